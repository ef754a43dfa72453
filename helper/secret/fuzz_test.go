package secret

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

// fuzzIdentity is the identity of testdata/fuzz-identity.json, a plaintext
// test key (not a secret) that the FuzzOpen seeds are sealed to. It is read
// with ParseKeyFile, not Key.Load, because git does not keep its 0600 mode.
func fuzzIdentity(f *testing.F) *Identity {
	f.Helper()
	data, err := os.ReadFile("testdata/fuzz-identity.json")
	if err != nil {
		f.Fatal(err)
	}
	kf, err := ParseKeyFile(data)
	if err != nil {
		f.Fatal(err)
	}
	id, err := Key{Profile: "fuzz"}.identityFromText(kf, kf.Identity)
	if err != nil {
		f.Fatal(err)
	}
	return id
}

func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte(`{"format":"tokenhelper-key","version":1}`))
	f.Add([]byte(`{"format":"tokenhelper-key","version":1,"recipient":"age1","protection":"passphrase","identity":"-----BEGIN AGE ENCRYPTED FILE-----\n"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := ParseKeyFile(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		// What parses, marshals and parses back to the same thing.
		out, err := kf.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		kf2, err := ParseKeyFile(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled key file: %v", err)
		}
		if !reflect.DeepEqual(kf, kf2) {
			t.Fatalf("round trip changed the key file: %v -> %v", kf, kf2)
		}
	})
}

// FuzzUnlock feeds corrupt key files and passphrases to the unlock path
// (with a low scrypt ceiling, so every input stays fast).
func FuzzUnlock(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, pass string) {
		kf, err := ParseKeyFile(data)
		if err != nil {
			return
		}
		k := Key{Path: "/nonexistent/key.json", Profile: "fuzz"}
		id, err := k.unlock(kf, pass, KeyOptions{MaxWorkFactor: 10})
		if err != nil {
			var he *helper.Error
			if !errors.As(err, &he) || he.Msg == "" || he.Fix == "" {
				t.Fatalf("unlock error %v (%T) is not a *helper.Error with message and fix", err, err)
			}
			return
		}
		if id.Recipient() != kf.Recipient {
			t.Fatalf("unlocked identity %s does not match recipient %s", id.Recipient(), kf.Recipient)
		}
	})
}

func FuzzOpen(f *testing.F) {
	id := fuzzIdentity(f)
	f.Add([]byte{})
	f.Add([]byte("-----BEGIN AGE ENCRYPTED FILE-----\n-----END AGE ENCRYPTED FILE-----\n"))
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := id.Open(ct)
		if err != nil {
			var he *helper.Error
			if !errors.As(err, &he) || he.Msg == "" || he.Fix == "" {
				t.Fatalf("Open error %v (%T) is not a *helper.Error with message and fix", err, err)
			}
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			return
		}
		if len(pt) > MaxSecretSize {
			t.Fatal("oversized plaintext")
		}
	})
}

// FuzzParseCacheEntry: a keyring entry is written by any process of the
// user; reading one never panics, never vouches without a key state, keeps
// at most maxVouched sources, and survives a round trip.
func FuzzParseCacheEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e := parseCacheEntry(data)
		if len(e.sources) > maxVouched || (e.keyState == "" && len(e.sources) > 0) {
			t.Fatalf("parsed %+v", e)
		}
		if e.identity != "" && !strings.ContainsAny(e.identity, "\r\n") {
			if again := parseCacheEntry(e.marshal()); !reflect.DeepEqual(again, e) {
				t.Fatalf("round trip: %+v, then %+v", e, again)
			}
		}
	})
}
