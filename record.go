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
// user id. A version byte, a count byte, count sessions of sessionSize bytes each
// (big-endian), and an HMAC-SHA256 of all that and the user id under the Secret, so that
// whoever can write the store can neither forge a session nor move a record to another
// user. At most 255 sessions.
//
//	version(1) count(1) { id(16) key(32) created(8) used(8) rotated(8) gen(4) }... mac(32)
const (
	recordVersion = 1
	sessionSize   = 16 + 32 + 8 + 8 + 8 + 4
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
	b := make([]byte, 2, 2+len(ss)*sessionSize+recordMACSize)
	b[0], b[1] = recordVersion, byte(len(ss))
	for i := range ss {
		s := &ss[i]
		b = append(b, s.id[:]...)
		b = append(b, s.key[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(s.created))
		b = binary.BigEndian.AppendUint64(b, uint64(s.used))
		b = binary.BigEndian.AppendUint64(b, uint64(s.rotated))
		b = binary.BigEndian.AppendUint32(b, s.gen)
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
// 255 that matches the length exactly, distinct session ids, and times in order
// (0 < created <= used, created <= rotated). Anything else is errCorruptRecord, which
// answers 500 and ends nothing: a record the package did not write is not evidence of
// anything.
func decodeRecord(b []byte) ([]session, error) {
	if len(b) > 0 && b[0] > recordVersion {
		return nil, errNewerRecord
	}
	if len(b) < 2 || b[0] != recordVersion || b[1] == 0 || len(b) != 2+int(b[1])*sessionSize {
		return nil, errCorruptRecord
	}
	ss := make([]session, b[1])
	for i := range ss {
		p, s := b[2+i*sessionSize:], &ss[i]
		copy(s.id[:], p)
		copy(s.key[:], p[16:])
		s.created = int64(binary.BigEndian.Uint64(p[48:]))
		s.used = int64(binary.BigEndian.Uint64(p[56:]))
		s.rotated = int64(binary.BigEndian.Uint64(p[64:]))
		s.gen = binary.BigEndian.Uint32(p[72:])
		if s.created <= 0 || s.used < s.created || s.rotated < s.created || find(ss[:i], s.id) >= 0 {
			return nil, errCorruptRecord
		}
	}
	return ss, nil
}
