package jwtauth

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// The store record: all sessions of one user, the one value the Store keeps under the
// user id. A version byte, a count byte, count sessions (big-endian), and an
// HMAC-SHA256 of all that and the user id under the Secret, so that whoever can write
// the store can neither forge a session nor move a record to another user. At most 255
// sessions of at most 375 bytes each.
//
//	version(1)=2|3 count(1) { id(16) key(32) created(8) used(8) rotated(8) gen(4)
//	                           authed(8) n(1) label(n)
//	                           [version 3: b(1) jkt(32 if b) u(1) { jti(16) until(8) }*u] }... mac(32)
//
// Version 1, written before sessions had details, stops each session after gen: it
// reads as authed = created and no label. Version 3 adds DPoP: the thumbprint of the key
// a session is bound to (b = 1) and the proofs it accepted that are still within their
// iat window. A record is written as version 3 only when one of its sessions is bound,
// so that replicas of the version before DPoP read every other user's record during a
// rolling deploy.
const (
	recordVersion = 3
	sessionSize   = 16 + 32 + 8 + 8 + 8 + 4 // a session of version 1; version 2 adds 9 bytes and the label
	maxLabel      = 64
	maxProofUses  = 8 // the proofs a bound session remembers (see sessions.prove)
	recordMACSize = 32
	recordLabel   = "jwtauth record\x00"
)

// How a record can fail to open.
var (
	// errUnreadable: no configured key opens it (its Secret was dropped from
	// PreviousSecrets, or something else wrote it). It holds no live session: a login
	// replaces it from this exact value, and RevokeSessions deletes it.
	errUnreadable = errors.New("jwtauth: no key opens the store's session record")
	// errCorruptRecord: an authentic record (its MAC is good) that does not decode, a
	// bug: a 500 that ends nothing.
	errCorruptRecord = errors.New("jwtauth: the store's session record is corrupt")
	// errNewerRecord: an authentic record of a newer version than this code reads,
	// written by newer replicas during a rolling deploy: it is left as it is.
	errNewerRecord = fmt.Errorf("%w: the store's session record is of a newer version", ErrUnavailable)
)

// sessionID is a session's id: random, not secret. The sid claim carries it as 22
// base64url characters.
type sessionID [16]byte

func (id sessionID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// parseSessionID reads a sid claim; ok is false for anything this package did not write.
func parseSessionID(sid string) (id sessionID, ok bool) {
	if len(sid) != 22 {
		return id, false
	}
	if n, err := b64.Decode(id[:], []byte(sid)); err != nil || n != len(id) {
		return sessionID{}, false // the decoder writes what it read before it refused
	}
	return id, true
}

// session is one login's refresh-token family. Times are Unix milliseconds.
type session struct {
	id      sessionID
	key     [32]byte // from crypto/rand; the tokens are derived from it with the Secret
	created int64    // the login
	used    int64    // the last login or refresh: the idle timeout counts from here
	rotated int64    // when generation gen became current: the reuse interval counts from here
	gen     uint32   // how many times the session's token was rotated
	authed  int64    // the login or the last reauthentication: auth_time
	label   string   // the device, at most maxLabel printable ASCII bytes
	jkt     [32]byte // DPoP: the thumbprint of the key the session is bound to; zero for none
	uses    []proofUse
}

// keyProof is what a verified DPoP proof (dpop.go) tells the session layer: the RFC 7638
// thumbprint of its key, and its use, which a bound session accepts once.
type keyProof struct {
	jkt [32]byte
	proofUse
}

// proofUse is one accepted DPoP proof: a digest of its key and jti, and until when (Unix
// milliseconds: its iat plus the window) a replay of it could still be accepted.
type proofUse struct {
	jti   [16]byte
	until int64
}

// find returns the index of the session id in ss, or -1.
func find(ss []session, id sessionID) int {
	return slices.IndexFunc(ss, func(s session) bool { return s.id == id })
}

// sealRecord returns the record of userID's sessions ss under k, or nil (delete the
// record) for none.
func sealRecord(k *macKey, userID string, ss []session) []byte {
	if len(ss) == 0 {
		return nil
	}
	size := 2 + recordMACSize
	for i := range ss {
		size += sessionSize + 9 + len(ss[i].label) + 34 + 24*len(ss[i].uses)
	}
	b := make([]byte, 2, size)
	b[0], b[1] = recordVersion-1, byte(len(ss))
	if slices.ContainsFunc(ss, func(s session) bool { return s.jkt != [32]byte{} }) {
		b[0] = recordVersion
	}
	for i := range ss {
		s := &ss[i]
		b = append(b, s.id[:]...)
		b = append(b, s.key[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(s.created))
		b = binary.BigEndian.AppendUint64(b, uint64(s.used))
		b = binary.BigEndian.AppendUint64(b, uint64(s.rotated))
		b = binary.BigEndian.AppendUint32(b, s.gen)
		b = binary.BigEndian.AppendUint64(b, uint64(s.authed))
		b = append(append(b, byte(len(s.label))), s.label...)
		if b[0] == recordVersion {
			b = append(b, 0)
			if s.jkt != [32]byte{} {
				b[len(b)-1] = 1
				b = append(b, s.jkt[:]...)
			}
			b = append(b, byte(len(s.uses)))
			for _, u := range s.uses {
				b = binary.BigEndian.AppendUint64(append(b, u.jti[:]...), uint64(u.until))
			}
		}
	}
	mac := recordMAC(k, userID, b)
	return append(b, mac[:]...)
}

// openRecord checks the MAC of userID's record raw under each of keys (Secret, then
// PreviousSecrets) with hmac.Equal, and decodes it. A nil record is no sessions.
func openRecord(keys []*macKey, userID string, raw []byte) ([]session, error) {
	if raw == nil {
		return nil, nil
	}
	if len(raw) < recordMACSize {
		return nil, errUnreadable
	}
	body, mac := raw[:len(raw)-recordMACSize], raw[len(raw)-recordMACSize:]
	for _, k := range keys {
		if want := recordMAC(k, userID, body); hmac.Equal(want[:], mac) {
			return decodeRecord(body)
		}
	}
	return nil, errUnreadable
}

// recordMAC is HMAC-SHA256(k, "jwtauth record\x00" || len(userID) || userID || body).
func recordMAC(k *macKey, userID string, body []byte) [recordMACSize]byte {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(userID)))
	return k.mac(recordLabel, n[:], []byte(userID), body)
}

// decodeRecord reads an authentic record body strictly: the version, a count from 1 to
// 255 of sessions that fill the body exactly, distinct session ids, times in order
// (0 < created <= used, created <= rotated, created <= authed) and labels of printable
// ASCII. Anything else is errCorruptRecord, which answers 500 and ends nothing: a record
// the package did not write is not evidence of anything.
func decodeRecord(b []byte) ([]session, error) {
	if len(b) > 0 && b[0] > recordVersion {
		return nil, errNewerRecord
	}
	if len(b) < 2 || b[0] == 0 || b[1] == 0 {
		return nil, errCorruptRecord
	}
	v, ss, p := b[0], make([]session, b[1]), b[2:]
	for i := range ss {
		s := &ss[i]
		if len(p) < sessionSize {
			return nil, errCorruptRecord
		}
		copy(s.id[:], p)
		copy(s.key[:], p[16:])
		s.created = int64(binary.BigEndian.Uint64(p[48:]))
		s.used = int64(binary.BigEndian.Uint64(p[56:]))
		s.rotated = int64(binary.BigEndian.Uint64(p[64:]))
		s.gen = binary.BigEndian.Uint32(p[72:])
		s.authed, p = s.created, p[sessionSize:]
		if v > 1 {
			if len(p) < 9 || int(p[8]) > min(maxLabel, len(p)-9) {
				return nil, errCorruptRecord
			}
			n := 9 + int(p[8])
			s.authed, s.label, p = int64(binary.BigEndian.Uint64(p)), string(p[9:n]), p[n:]
		}
		if v > 2 {
			var ok bool
			if p, ok = decodeBinding(s, p); !ok {
				return nil, errCorruptRecord
			}
		}
		if s.created <= 0 || s.used < s.created || s.rotated < s.created || s.authed < s.created ||
			!printable(s.label) || find(ss[:i], s.id) >= 0 {
			return nil, errCorruptRecord
		}
	}
	if len(p) != 0 {
		return nil, errCorruptRecord
	}
	return ss, nil
}

// decodeBinding reads the DPoP fields of version 3 into s from p, and returns the rest
// of p: a bound session's thumbprint, and at most maxProofUses proofs, which only a bound
// session has.
func decodeBinding(s *session, p []byte) ([]byte, bool) {
	if len(p) < 1 || p[0] > 1 || len(p) < 2+32*int(p[0]) {
		return nil, false
	}
	if p[0] == 1 {
		if copy(s.jkt[:], p[1:]); s.jkt == [32]byte{} {
			return nil, false
		}
		p = p[32:]
	}
	n, p := int(p[1]), p[2:]
	if n > maxProofUses || n > 0 && s.jkt == [32]byte{} || len(p) < 24*n {
		return nil, false
	}
	for ; n > 0; n, p = n-1, p[24:] {
		u := proofUse{until: int64(binary.BigEndian.Uint64(p[16:]))}
		copy(u.jti[:], p)
		s.uses = append(s.uses, u)
	}
	return p, true
}

// printable reports whether s is printable ASCII, spaces included.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
