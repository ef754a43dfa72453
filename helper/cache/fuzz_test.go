package cache

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzDecodeEntry: the entry decoder never panics on any file content,
// and whatever it accepts survives an encode/decode round trip unchanged.
// Seeds are in testdata/fuzz/FuzzDecodeEntry.
func FuzzDecodeEntry(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			if e != nil {
				t.Fatal("an entry with an error")
			}
			if bytes.Contains([]byte(err.Error()), []byte("eyJ")) {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		b, err := encodeEntry(e)
		if err != nil {
			// Only a time the JSON encoder refuses (year > 9999) may fail.
			if e.token.Expiry.Year() <= 9999 && e.obtainedAt.Year() <= 9999 && len(data) < MaxEntrySize/2 {
				t.Fatalf("accepted entry does not encode: %v", err)
			}
			return
		}
		e2, err := decodeEntry(b)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !sameEntry(e, e2) {
			t.Fatalf("round trip changed the entry:\n%+v\n%+v", e, e2)
		}
		if e.key.base() == "" {
			t.Fatal("empty file name")
		}
	})
}

func sameEntry(a, b *entry) bool {
	ta, tb := a.token, b.token
	return a.key.equal(b.key) && a.obtainedAt.Equal(b.obtainedAt) &&
		ta.AccessToken == tb.AccessToken && ta.Expiry.Equal(tb.Expiry) && ta.Issuer == tb.Issuer &&
		slices.Equal(ta.Scopes, tb.Scopes) && slices.Equal(ta.Audiences, tb.Audiences) &&
		ta.Profile == tb.Profile && ta.Source == tb.Source
}
