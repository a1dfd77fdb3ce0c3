// Package storetest checks that a jwtauth.Store keeps the Store contract: what Load
// and CompareAndSwap do with missing, matching and mismatching values, expiry, one
// winner among concurrent swaps, byte-for-byte values and keys, and a done context.
// jwtauth.MemStore and the redisstore and pgstore modules pass it. To check your own
// store, call Run from one of your tests:
//
//	func TestStore(t *testing.T) {
//		db := openTestDatabase(t)
//		storetest.Run(t, func() jwtauth.Store { return mystore.New(db) })
//	}
//
// The store newStore returns need not be empty, and several may share one database or
// server: every key the suite uses begins with "storetest:" and 16 random hexadecimal
// digits drawn afresh for each subtest, so it meets neither other data nor the keys of an
// earlier run, and each subtest deletes the keys it wrote when it ends.
//
// The suite runs in about a second. Its expiry checks wait in real time, because a store
// backed by a server expires values by the server's clock, which a test cannot fake.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
)

// Run checks the store that newStore returns against the Store contract, in subtests
// named after the properties they check. newStore is called once per subtest, and
// concurrently by the expiry subtests, which run at the same time to keep the suite
// short.
//
// Beyond what the Store doc comment states, Run requires:
//
//   - Keys are arbitrary strings: a NUL byte, invalid UTF-8, ':' and '*' and a 1 KiB key
//     must all work, and keys that differ in one byte are different keys. The package
//     keys the store by user id, and user ids are the application's. A store whose
//     backend cannot hold such keys encodes them (hex, or a hash).
//   - Values are arbitrary non-empty byte strings of up to 64 KiB at least. Load returns
//     exactly nil for a missing key, and a slice the caller may modify; the store keeps
//     no reference to the slices passed to CompareAndSwap and does not modify them.
//   - A value stored with a TTL is still there while less than the TTL has passed since
//     the call began, and gone 250 ms after the TTL has passed since the call returned.
//     A compare that fails leaves the TTL alone.
//   - The operations are atomic across 32 goroutines: of concurrent swaps from one old
//     value exactly one wins, and load-then-swap increments lose no update.
//
// A done context (cancelled, or past its deadline): a store should give up and return
// an error, preferably one wrapping ctx.Err(), but the contract allows it to ignore the
// context and complete the call. The package does not depend on cancellation: an
// operation that must complete, such as ending a session after a replay, runs under a
// context that is never cancelled. What Run requires is that a store under a done
// context never reports a result that is not true: Load may not answer (nil, nil) for a
// key that holds a value (the package would read "no token"), and CompareAndSwap may
// not answer (false, nil) when the key holds old, nor (true, nil) without having
// swapped. After an error the swap may or may not have happened, as after a timeout;
// Run checks that the key then holds the old value or the new one, nothing else.
func Run(t *testing.T, newStore func() jwtauth.Store) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, *harness)
	}{
		{"LoadMissingIsNil", testLoadMissing},
		{"InsertOnlyIfAbsent", testInsertOnlyIfAbsent},
		{"SwapWithRightOld", testSwapRightOld},
		{"SwapWithWrongOldChangesNothing", testSwapWrongOld},
		{"DeleteWithRightOld", testDeleteRightOld},
		{"DeleteWithWrongOldKeepsValue", testDeleteWrongOld},
		{"ValuesRoundTrip", testValuesRoundTrip},
		{"ValuesDifferingInLastByte", testLastByte},
		{"LoadResultBelongsToCaller", testLoadResultOwned},
		{"CASArgumentsBelongToCaller", testCASArgsOwned},
		{"KeysAreIndependent", testKeysIndependent},
		{"ConcurrentSwapsOneWinner", testConcurrentSwaps},
		{"ConcurrentInsertAndDeleteOneWinner", testConcurrentInsertDelete},
		{"ConcurrentIncrementsLoseNoUpdate", testConcurrentIncrements},
		{"DoneContext", testDoneContext},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newHarness(t, newStore)) })
	}
	// The expiry subtests mostly sleep, so they run at the same time: from goroutines
	// rather than with t.Parallel, which -parallel (GOMAXPROCS by default) would queue.
	t.Run("TTL", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, tc := range []struct {
			name string
			f    func(*testing.T, *harness)
		}{
			{"Expires", testTTLExpires},
			{"ZeroNeverExpires", testTTLZero},
			{"CASRestartsTTL", testTTLRestart},
			{"CASWithZeroRemovesTTL", testTTLZeroAfterTTL},
			{"CASWithTTLAddsTTL", testTTLAfterZero},
			{"FailedCASKeepsTTL", testTTLFailedCAS},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.Run(tc.name, func(t *testing.T) { tc.f(t, newHarness(t, newStore)) })
			}()
		}
		wg.Wait()
	})
}

// harness is one subtest's store and key space.
type harness struct {
	t      *testing.T
	store  jwtauth.Store
	prefix string              // "storetest:" + 16 random hex digits + ":"
	keys   map[string]struct{} // every key handed out, deleted by cleanup
}

// newHarness calls newStore and draws a fresh key prefix; the keys handed out are
// deleted when t ends.
func newHarness(t *testing.T, newStore func() jwtauth.Store) *harness {
	t.Helper()
	s := newStore()
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	h := &harness{t: t, store: s, prefix: userPrefix(t), keys: map[string]struct{}{}}
	t.Cleanup(h.cleanup)
	return h
}

// key returns the store key for name and records it for cleanup.
func (h *harness) key(name string) string {
	k := h.prefix + name
	h.keys[k] = struct{}{}
	return k
}

// cleanup deletes every key the subtest used, under a context of its own.
func (h *harness) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for k := range h.keys {
		for attempt := 0; ; attempt++ {
			v, err := h.store.Load(ctx, k)
			if err == nil && v == nil {
				break
			}
			var ok bool
			if err == nil {
				ok, err = h.store.CompareAndSwap(ctx, k, v, nil, 0)
			}
			if err != nil || !ok && attempt == 2 {
				h.t.Errorf("cleanup: cannot delete %s: %v", h.name(k), err)
				break
			}
		}
	}
}

// name is how a key shows in messages: without the prefix, quoted, shortened.
func (h *harness) name(k string) string {
	n := strings.TrimPrefix(k, h.prefix)
	if len(n) > 40 {
		return fmt.Sprintf("%q… (%d bytes)", n[:20], len(n))
	}
	return fmt.Sprintf("%q", n)
}

// show is how a value shows in messages.
func show(v []byte) string {
	switch {
	case v == nil:
		return "nil"
	case len(v) > 48:
		return fmt.Sprintf("%q… (%d bytes)", v[:24], len(v))
	}
	return fmt.Sprintf("%q", v)
}

// same reports whether a Load result is want: nil for nil, else the same bytes.
func same(got, want []byte) bool {
	return (got == nil) == (want == nil) && bytes.Equal(got, want)
}

// load returns Load(k), failing t on an error.
func (h *harness) load(k string) []byte {
	h.t.Helper()
	v, err := h.store.Load(context.Background(), k)
	if err != nil {
		h.t.Fatalf("Load(%s): %v", h.name(k), err)
	}
	return v
}

// want fails t unless k holds want (nil: nothing).
func (h *harness) want(k string, want []byte) {
	h.t.Helper()
	if got := h.load(k); !same(got, want) {
		h.t.Fatalf("Load(%s) = %s, want %s", h.name(k), show(got), show(want))
	}
}

// cas returns CompareAndSwap(k, old, new, ttl), failing t on an error.
func (h *harness) cas(k string, old, new []byte, ttl time.Duration) bool {
	h.t.Helper()
	ok, err := h.store.CompareAndSwap(context.Background(), k, old, new, ttl)
	if err != nil {
		h.t.Fatalf("CompareAndSwap(%s, %s, %s, %v): %v", h.name(k), show(old), show(new), ttl, err)
	}
	return ok
}

// wantCAS fails t unless CompareAndSwap(k, old, new, ttl) reports want.
func (h *harness) wantCAS(k string, old, new []byte, ttl time.Duration, want bool) {
	h.t.Helper()
	if got := h.cas(k, old, new, ttl); got != want {
		h.t.Fatalf("CompareAndSwap(%s, %s, %s, %v) = %v, want %v", h.name(k), show(old), show(new), ttl, got, want)
	}
}

func testLoadMissing(t *testing.T, h *harness) {
	h.want(h.key("never stored"), nil)
}

func testInsertOnlyIfAbsent(t *testing.T, h *harness) {
	k := h.key("k")
	v, w := []byte("first value"), []byte("second value")
	h.wantCAS(k, nil, v, 0, true) // old nil on a missing key: stored
	h.want(k, v)
	h.wantCAS(k, nil, w, 0, false) // old nil on a present key: not stored
	h.want(k, v)

	// A non-nil old never matches a missing key: the swap must not create it.
	m := h.key("missing")
	h.wantCAS(m, v, w, 0, false)
	h.want(m, nil)
}

func testSwapRightOld(t *testing.T, h *harness) {
	k := h.key("k")
	v, w, x := []byte("value one"), []byte("value two"), []byte("value three")
	h.wantCAS(k, nil, v, 0, true)
	h.wantCAS(k, v, w, 0, true)
	h.want(k, w)
	h.wantCAS(k, w, x, 0, true)
	h.want(k, x)
	h.wantCAS(k, x, x, 0, true) // swapping a value for itself is a swap too
	h.want(k, x)
}

func testSwapWrongOld(t *testing.T, h *harness) {
	k := h.key("k")
	v := []byte("the stored value")
	h.wantCAS(k, nil, v, 0, true)
	firstDiffers := bytes.Clone(v)
	firstDiffers[0] ^= 1
	lastDiffers := bytes.Clone(v)
	lastDiffers[len(v)-1] ^= 0x80
	for _, tc := range []struct {
		name string
		old  []byte
	}{
		{"different bytes", []byte("another value!!")},
		{"a prefix", v[:len(v)-1]},
		{"the first byte", v[:1]},
		{"longer", append(bytes.Clone(v), 'x')},
		{"followed by NUL", append(bytes.Clone(v), 0)},
		{"same length, first byte differs", firstDiffers},
		{"same length, last byte differs", lastDiffers},
		{"upper case", bytes.ToUpper(v)},
	} {
		if h.cas(k, tc.old, []byte("replacement"), 0) {
			t.Fatalf("CompareAndSwap with old %s (%s) swapped out %s", show(tc.old), tc.name, show(v))
		}
		h.want(k, v)
	}
}

func testDeleteRightOld(t *testing.T, h *harness) {
	k := h.key("k")
	v := []byte("to be deleted")
	h.wantCAS(k, nil, v, 0, true)
	h.wantCAS(k, v, nil, 0, true)
	h.want(k, nil)
	// Deleted means absent: an insert works again, and the old value is gone for good.
	h.wantCAS(k, v, []byte("resurrected"), 0, false)
	h.want(k, nil)
	h.wantCAS(k, nil, v, 0, true)
	h.want(k, v)
}

func testDeleteWrongOld(t *testing.T, h *harness) {
	k := h.key("k")
	v := []byte("kept value")
	h.wantCAS(k, nil, v, 0, true)
	for _, old := range [][]byte{[]byte("other value"), v[:len(v)-1], append(bytes.Clone(v), '!')} {
		h.wantCAS(k, old, nil, 0, false)
		h.want(k, v)
	}
	// A delete of a missing key with some old value reports no swap and creates nothing.
	m := h.key("missing")
	h.wantCAS(m, v, nil, 0, false)
	h.want(m, nil)
}

// testValues are the values that must round-trip, by name.
func testValues(t *testing.T) []struct {
	name string
	v    []byte
} {
	up, down := make([]byte, 256), make([]byte, 256)
	for i := range up {
		up[i], down[i] = byte(i), byte(255-i)
	}
	big := make([]byte, 64<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	return []struct {
		name string
		v    []byte
	}{
		{"digest", []byte("47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")},
		{"bytes 0x00 to 0xff", up},
		{"bytes 0xff to 0x00", down},
		{"leading NUL", []byte("\x00value")},
		{"only NUL", []byte{0}},
		{"invalid UTF-8", []byte("\xff\xfe\xc3\x28 \xed\xa0\x80")},
		{"CRLF and RESP markers", []byte("$3\r\nfoo\r\n*1\r\n")},
		{"64 KiB random", big},
	}
}

func testValuesRoundTrip(t *testing.T, h *harness) {
	for i, tc := range testValues(t) {
		k := h.key(fmt.Sprintf("value %d", i))
		h.wantCAS(k, nil, tc.v, 0, true)
		if got := h.load(k); !same(got, tc.v) {
			t.Fatalf("%s: Load = %s, want the %d bytes stored, %s", tc.name, show(got), len(tc.v), show(tc.v))
		}
		// The value is the old value of a swap too, compared byte for byte.
		next := append(bytes.Clone(tc.v), 0xff)
		h.wantCAS(k, tc.v, next, 0, true)
		h.want(k, next)
	}
}

func testLastByte(t *testing.T, h *harness) {
	k := h.key("k")
	v := bytes.Repeat([]byte{0xab}, 1000)
	w := bytes.Clone(v)
	w[len(w)-1] = 0xac
	h.wantCAS(k, nil, v, 0, true)
	h.want(k, v)
	h.wantCAS(k, w, []byte("x"), 0, false)
	h.want(k, v)
	h.wantCAS(k, v, w, 0, true)
	h.want(k, w)
	h.wantCAS(k, v, []byte("x"), 0, false)
	h.want(k, w)
}

func testLoadResultOwned(t *testing.T, h *harness) {
	k := h.key("k")
	v := []byte("original value")
	h.wantCAS(k, nil, v, 0, true)
	got := h.load(k)
	for i := range got {
		got[i] = 'X'
	}
	h.want(k, v)
	// Two loads do not share memory either.
	a, b := h.load(k), h.load(k)
	a[0] = 'Y'
	if !same(b, v) {
		t.Fatalf("a write to one Load result changed another to %s", show(b))
	}
	// And the stored value still compares as the original.
	h.wantCAS(k, v, []byte("next"), 0, true)
}

func testCASArgsOwned(t *testing.T, h *harness) {
	k := h.key("k")
	old := []byte("stored first")
	h.wantCAS(k, nil, old, 0, true)
	newv := []byte("stored second")
	oldArg, newArg := bytes.Clone(old), bytes.Clone(newv)
	h.wantCAS(k, oldArg, newArg, 0, true)
	if !bytes.Equal(oldArg, old) || !bytes.Equal(newArg, newv) {
		t.Fatalf("CompareAndSwap modified its arguments: old %s, new %s", show(oldArg), show(newArg))
	}
	for i := range newArg {
		newArg[i] = 'X'
	}
	h.want(k, newv)
	h.wantCAS(k, newArg, []byte("x"), 0, false) // the store did not keep newArg
	h.wantCAS(k, newv, []byte("x"), 0, true)
}

func testKeysIndependent(t *testing.T, h *harness) {
	names := []string{
		"a", "a\x00", "A", "a ", "\x00a", "b",
		"ünïcödé 日本 🔑", "\xff\xfe invalid UTF-8",
		"user:*:[a-z]?\\*", "user:*",
		strings.Repeat("0123456789abcdef", 64), // 1 KiB
		strings.Repeat("0123456789abcdef", 64)[:1023] + "g",
	}
	keys := make([]string, len(names))
	vals := make([][]byte, len(names))
	for i, n := range names {
		keys[i] = h.key(n)
		vals[i] = []byte(fmt.Sprintf("value of key %d", i))
		h.wantCAS(keys[i], nil, vals[i], 0, true)
	}
	for i := range keys {
		h.want(keys[i], vals[i])
	}
	// Another key's value is not this key's old value.
	h.wantCAS(keys[0], vals[1], []byte("x"), 0, false)
	h.wantCAS(keys[1], vals[0], []byte("x"), 0, false)
	// Swapping or deleting one key leaves the others alone.
	h.wantCAS(keys[0], vals[0], nil, 0, true)
	h.wantCAS(keys[2], vals[2], []byte("changed"), 0, true)
	for i := range keys {
		switch i {
		case 0:
			h.want(keys[i], nil)
		case 2:
			h.want(keys[i], []byte("changed"))
		default:
			h.want(keys[i], vals[i])
		}
	}
}

// Concurrency: enough goroutines and rounds that a store which loads, compares and
// writes in separate steps loses the race, in well under a second on a laptop.
const (
	racers      = 32
	raceRounds  = 50
	incrementer = 8  // goroutines incrementing one counter
	increments  = 25 // increments per goroutine
)

// race runs f(i) for i in [0, n) in n goroutines released at once, and returns the
// first error any of them returned.
func race(n int, f func(i int) error) error {
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			errs[i] = f(i)
		}(i)
	}
	close(start)
	wg.Wait()
	return errors.Join(errs...)
}

// raceCAS runs n concurrent CompareAndSwap(k, old, news[i]) and returns the index of
// the one winner, failing t unless there is exactly one.
func (h *harness) raceCAS(k string, old []byte, news [][]byte) int {
	h.t.Helper()
	won := make([]bool, len(news))
	err := race(len(news), func(i int) (err error) {
		won[i], err = h.store.CompareAndSwap(context.Background(), k, old, news[i], 0)
		return err
	})
	if err != nil {
		h.t.Fatalf("concurrent CompareAndSwap from %s: %v", show(old), err)
	}
	winner := -1
	for i, ok := range won {
		switch {
		case ok && winner >= 0:
			h.t.Fatalf("concurrent CompareAndSwap from %s: swaps to %s and %s both succeeded", show(old), show(news[winner]), show(news[i]))
		case ok:
			winner = i
		}
	}
	if winner < 0 {
		h.t.Fatalf("concurrent CompareAndSwap from %s: none of %d succeeded", show(old), len(news))
	}
	return winner
}

func testConcurrentSwaps(t *testing.T, h *harness) {
	k := h.key("k")
	cur := []byte("round -1")
	h.wantCAS(k, nil, cur, 0, true)
	for round := 0; round < raceRounds; round++ {
		news := make([][]byte, racers)
		for i := range news {
			news[i] = []byte(fmt.Sprintf("round %d, goroutine %d", round, i))
		}
		w := h.raceCAS(k, cur, news)
		h.want(k, news[w])
		cur = news[w]
	}
}

func testConcurrentInsertDelete(t *testing.T, h *harness) {
	k := h.key("k")
	nils := make([][]byte, racers)
	for round := 0; round < raceRounds; round++ {
		news := make([][]byte, racers)
		for i := range news {
			news[i] = []byte(fmt.Sprintf("round %d, goroutine %d", round, i))
		}
		w := h.raceCAS(k, nil, news) // inserts: one finds the key absent
		h.want(k, news[w])
		h.raceCAS(k, news[w], nils) // deletes: one finds the value there
		h.want(k, nil)
	}
}

func testConcurrentIncrements(t *testing.T, h *harness) {
	// A counter as 8 big-endian bytes (NUL bytes included), absent meaning 0. Each
	// goroutine loads, adds one and swaps, retrying on a lost compare: any lost update
	// shows in the final count.
	k := h.key("counter")
	const maxAttempts = 100 * incrementer // per increment: a live store needs far fewer
	err := race(incrementer, func(int) error {
		ctx := context.Background()
		for n := 0; n < increments; n++ {
			for attempt := 0; ; attempt++ {
				if attempt == maxAttempts {
					return fmt.Errorf("no increment succeeded in %d attempts", maxAttempts)
				}
				old, err := h.store.Load(ctx, k)
				if err != nil {
					return fmt.Errorf("load: %v", err)
				}
				var c uint64
				if old != nil {
					if len(old) != 8 {
						return fmt.Errorf("load = %s, want 8 bytes", show(old))
					}
					c = binary.BigEndian.Uint64(old)
				}
				next := binary.BigEndian.AppendUint64(nil, c+1)
				ok, err := h.store.CompareAndSwap(ctx, k, old, next, 0)
				if err != nil {
					return fmt.Errorf("CompareAndSwap: %v", err)
				}
				if ok {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.want(k, binary.BigEndian.AppendUint64(nil, incrementer*increments))
}

func testDoneContext(t *testing.T, h *harness) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()

	other := h.key("bystander")
	h.wantCAS(other, nil, []byte("bystander's value"), 0, true)
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"cancelled", cancelled}, {"past its deadline", expired}} {
		k := h.key("k " + c.name)
		var honoured, ignored int
		// note reports one call's result under the done context: an error (honoured),
		// or a result that must be true (ignored).
		note := func(err error) {
			if err == nil {
				ignored++
				return
			}
			honoured++
			if !errors.Is(err, c.ctx.Err()) {
				t.Logf("context %s: the error %q does not wrap ctx.Err() (%v); recommended, not required", c.name, err, c.ctx.Err())
			}
		}
		// cur is what k holds; each step checks the done-context call against it.
		var cur []byte
		step := func(old, new []byte) {
			t.Helper()
			ok, err := h.store.CompareAndSwap(c.ctx, k, old, new, 0)
			note(err)
			got := h.load(k)
			switch {
			case err != nil && !same(got, old) && !same(got, new):
				t.Fatalf("context %s: CompareAndSwap(%s, %s) failed (%v) and left %s, want either", c.name, show(old), show(new), err, show(got))
			case err == nil && !ok:
				t.Fatalf("context %s: CompareAndSwap(%s, %s) = false, nil although the key held %s: a done context must give an error, not a failed compare", c.name, show(old), show(new), show(old))
			case err == nil && !same(got, new):
				t.Fatalf("context %s: CompareAndSwap(%s, %s) = true, nil, but the key holds %s", c.name, show(old), show(new), show(got))
			}
			cur = got
			v, err := h.store.Load(c.ctx, k)
			note(err)
			if err == nil && !same(v, cur) {
				t.Fatalf("context %s: Load = %s, nil; the key holds %s", c.name, show(v), show(cur))
			}
		}
		// Insert, swap, delete: each from the key's actual state, which an earlier
		// failed call may or may not have changed.
		step(nil, []byte("inserted"))
		if cur == nil {
			h.wantCAS(k, nil, []byte("inserted"), 0, true)
			cur = []byte("inserted")
		}
		step(cur, []byte("swapped"))
		step(cur, nil)
		if ignored > 0 && honoured == 0 {
			t.Logf("context %s: the store ignores a done context; the contract allows it", c.name)
		}
	}
	h.want(other, []byte("bystander's value"))
}

// Expiry timing. A value must be there while less than its TTL has passed since the
// call that stored it began, and gone expiryMargin after its TTL has passed since that
// call returned. A check whose window a slow machine missed is skipped, not failed.
const (
	shortTTL     = 150 * time.Millisecond
	longTTL      = 300 * time.Millisecond
	expiryMargin = 250 * time.Millisecond
)

// sleepUntil sleeps until t.
func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }

// casTimed runs wantCAS(k, old, new, ttl, true) and returns when the call began and
// when it returned. When it fails with more than stillLive since since (a slow
// machine let a value expire), t is skipped.
func (h *harness) casTimed(k string, old, new []byte, ttl time.Duration, since time.Time, stillLive time.Duration) (began, returned time.Time) {
	h.t.Helper()
	began = time.Now()
	if !h.cas(k, old, new, ttl) {
		if time.Since(since) >= stillLive {
			h.t.Skipf("CompareAndSwap(%s, %s, %s) found the value expired, but %v had passed (a slow machine): inconclusive", h.name(k), show(old), show(new), time.Since(since))
		}
		h.t.Fatalf("CompareAndSwap(%s, %s, %s, %v) = false %v after the value was stored with a TTL of %v", h.name(k), show(old), show(new), ttl, time.Since(since), stillLive)
	}
	return began, time.Now()
}

// wantLive fails t unless k holds want, when less than ttl has passed since began; a
// Load that finds it gone later than that is only logged (a slow machine).
func (h *harness) wantLive(k string, want []byte, began time.Time, ttl time.Duration) {
	h.t.Helper()
	got := h.load(k)
	elapsed := time.Since(began)
	switch {
	case same(got, want):
	case got == nil && elapsed >= ttl:
		h.t.Logf("Load(%s) found the value expired, but %v had passed (a slow machine): inconclusive", h.name(k), elapsed)
	case got == nil:
		h.t.Fatalf("Load(%s) = nil %v after the value was stored with a TTL of %v: expired early", h.name(k), elapsed, ttl)
	default:
		h.t.Fatalf("Load(%s) = %s, want %s", h.name(k), show(got), show(want))
	}
}

func testTTLExpires(t *testing.T, h *harness) {
	k := h.key("k")
	v := []byte("expiring value")
	began, returned := h.casTimed(k, nil, v, shortTTL, time.Now(), shortTTL)
	h.wantLive(k, v, began, shortTTL)
	sleepUntil(returned.Add(shortTTL + expiryMargin))
	h.want(k, nil)
	// Expired is absent: the old value no longer compares, and an insert works.
	h.wantCAS(k, v, []byte("after expiry"), 0, false)
	h.wantCAS(k, v, nil, 0, false)
	h.want(k, nil)
	h.wantCAS(k, nil, []byte("after expiry"), 0, true)
	h.want(k, []byte("after expiry"))
}

func testTTLZero(t *testing.T, h *harness) {
	k := h.key("k")
	v := []byte("lasting value")
	_, returned := h.casTimed(k, nil, v, 0, time.Now(), 0)
	sleepUntil(returned.Add(shortTTL + expiryMargin))
	h.want(k, v)
}

func testTTLRestart(t *testing.T, h *harness) {
	// Stored for longTTL, swapped at two thirds of it for longTTL again: the value
	// outlives the first TTL and then expires at the second.
	k := h.key("k")
	v, w := []byte("first"), []byte("second")
	began0, returned0 := h.casTimed(k, nil, v, longTTL, time.Now(), longTTL)
	sleepUntil(began0.Add(longTTL * 2 / 3))
	began1, returned1 := h.casTimed(k, v, w, longTTL, began0, longTTL)
	sleepUntil(returned0.Add(longTTL + 100*time.Millisecond)) // past the first expiry
	h.wantLive(k, w, began1, longTTL)
	sleepUntil(returned1.Add(longTTL + expiryMargin))
	h.want(k, nil)
}

func testTTLZeroAfterTTL(t *testing.T, h *harness) {
	k := h.key("k")
	v, w := []byte("expiring"), []byte("no longer expiring")
	began, _ := h.casTimed(k, nil, v, shortTTL, time.Now(), shortTTL)
	_, returned := h.casTimed(k, v, w, 0, began, shortTTL)
	sleepUntil(returned.Add(shortTTL + expiryMargin))
	h.want(k, w)
}

func testTTLAfterZero(t *testing.T, h *harness) {
	k := h.key("k")
	v, w := []byte("lasting"), []byte("now expiring")
	h.wantCAS(k, nil, v, 0, true)
	began, returned := h.casTimed(k, v, w, shortTTL, time.Now(), shortTTL)
	h.wantLive(k, w, began, shortTTL)
	sleepUntil(returned.Add(shortTTL + expiryMargin))
	h.want(k, nil)
}

func testTTLFailedCAS(t *testing.T, h *harness) {
	// Compares that fail, with ttl 0, must not touch the value's expiry.
	k := h.key("k")
	v := []byte("expiring value")
	began, returned := h.casTimed(k, nil, v, shortTTL, time.Now(), shortTTL)
	h.wantCAS(k, []byte("wrong"), []byte("x"), 0, false)
	h.wantCAS(k, []byte("wrong"), nil, 0, false)
	if h.cas(k, nil, []byte("x"), 0) {
		if time.Since(began) >= shortTTL {
			t.Skipf("the value expired before the checks ran (%v, a slow machine): inconclusive", time.Since(began))
		}
		t.Fatalf("CompareAndSwap(nil, %q) swapped although the key held a live value", "x")
	}
	h.wantLive(k, v, began, shortTTL)
	sleepUntil(returned.Add(shortTTL + expiryMargin))
	h.want(k, nil)
}

// userPrefix returns "storetest:", 16 random hexadecimal digits and ":": every user id
// of one run begins with it, so that a shared store meets no other data.
func userPrefix(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "storetest:" + hex.EncodeToString(b[:]) + ":"
}
