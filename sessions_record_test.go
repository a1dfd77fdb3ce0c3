package jwtauth

import (
	"bytes"
	"errors"
	"testing"
)

// testSessions is a record of two sessions as the package writes them.
func testSessions() []session {
	a := session{created: 1_700_000_000_000, used: 1_700_000_100_000, rotated: 1_700_000_050_000, gen: 7}
	b := session{created: 1_700_000_200_000, used: 1_700_000_200_000, rotated: 1_700_000_200_000}
	for i := range a.id {
		a.id[i], b.id[i] = byte(i), byte(255-i)
	}
	for i := range a.key {
		a.key[i], b.key[i] = byte(3*i), byte(5*i)
	}
	return []session{a, b}
}

func TestRecordRoundTrip(t *testing.T) {
	ss := testSessions()
	b := encodeRecord(ss)
	if len(b) != 2+2*sessionSize || b[0] != recordVersion || b[1] != 2 {
		t.Fatalf("record of %d bytes, header % x", len(b), b[:2])
	}
	got, err := decodeRecord(b)
	if err != nil || len(got) != 2 || got[0] != ss[0] || got[1] != ss[1] {
		t.Fatalf("decodeRecord = %+v, %v; want %+v", got, err, ss)
	}
	if encodeRecord(nil) != nil {
		t.Error("no sessions must encode as nil: the record is deleted")
	}
	if got, err := decodeRecord(nil); got != nil || err != nil {
		t.Errorf("decodeRecord(nil) = %v, %v; want no sessions", got, err)
	}
}

// TestRecordDecodeIsStrict: every corruption is errCorruptRecord, never a panic or a
// session read from garbage.
func TestRecordDecodeIsStrict(t *testing.T) {
	good := encodeRecord(testSessions())
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	dup := testSessions()
	dup[1].id = dup[0].id
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{recordVersion}},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2; return b })},
		{"count 0", []byte{recordVersion, 0}},
		{"count larger than the data", mod(func(b []byte) []byte { b[1] = 3; return b })},
		{"count smaller than the data", mod(func(b []byte) []byte { b[1] = 1; return b })},
		{"one byte short", good[:len(good)-1]},
		{"one byte more", append(bytes.Clone(good), 0)},
		{"duplicate session id", encodeRecord(dup)},
		{"created 0", mod(func(b []byte) []byte { copy(b[2+48:], make([]byte, 8)); return b })},
		{"created negative", mod(func(b []byte) []byte { b[2+48] = 0x80; return b })},
		{"used before created", mod(func(b []byte) []byte { copy(b[2+56:], make([]byte, 8)); return b })},
		{"rotated before created", mod(func(b []byte) []byte { copy(b[2+64:], make([]byte, 8)); return b })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss, err := decodeRecord(tc.b)
			if !errors.Is(err, errCorruptRecord) || ss != nil {
				t.Fatalf("decodeRecord = %v, %v; want errCorruptRecord", ss, err)
			}
		})
	}
}

// FuzzRecordDecode: decoding any bytes never panics; what decodes is a valid record that
// encodes back to the same bytes (one encoding per record), and what fails is
// errCorruptRecord with no sessions.
func FuzzRecordDecode(f *testing.F) {
	f.Add(encodeRecord(testSessions()))
	f.Add(encodeRecord(testSessions()[:1]))
	f.Add([]byte{recordVersion, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errCorruptRecord) || ss != nil {
				t.Fatalf("decodeRecord = %v, %v", ss, err)
			}
			return
		}
		if b == nil {
			return
		}
		if len(ss) == 0 || len(ss) > 255 {
			t.Fatalf("%d sessions decoded", len(ss))
		}
		if again := encodeRecord(ss); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded record differs:\n% x\n% x", again, b)
		}
	})
}
