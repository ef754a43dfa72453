package secret

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// maxVouched bounds how many passphrase sources one unlock-cache entry
// remembers as checked; the oldest is dropped first.
const maxVouched = 8

// cacheEntry is what the unlock cache holds for a key: the identity, the
// state of the key file it was unlocked from, and the passphrase sources
// whose passphrase was checked (by scrypt) against that key file state.
// Nothing in it is derived from a passphrase (see the package
// documentation, "What an unlock vouches for").
//
// Its text form, the secret given to [Cache.Put]:
//
//	AGE-SECRET-KEY-1…
//	key <hex SHA-256 of the key file's encrypted identity>
//	src <source print>
//	src <source print>
//
// An entry of the first version holds the identity line alone; it opens
// the key but vouches for no source.
type cacheEntry struct {
	identity string
	keyState string
	sources  []string
}

// keyState names the state of a key file's passphrase protection: a hash
// of its encrypted identity, which changes whenever the passphrase is
// changed (new scrypt salt) or the key is replaced. It is public to
// whoever can read the key file and says nothing about the passphrase.
func keyState(kf *KeyFile) string {
	h := sha256.New()
	h.Write([]byte("tokenhelper key state v1\x00"))
	h.Write([]byte(kf.Identity))
	return hex.EncodeToString(h.Sum(nil))
}

func (e cacheEntry) marshal() []byte {
	var b bytes.Buffer
	b.WriteString(e.identity)
	b.WriteByte('\n')
	if e.keyState != "" {
		b.WriteString("key " + e.keyState + "\n")
		for _, s := range e.sources {
			b.WriteString("src " + s + "\n")
		}
	}
	return b.Bytes()
}

// parseCacheEntry reads an entry; unknown lines are ignored, so a later
// version can add some. It does not check the identity.
func parseCacheEntry(p []byte) cacheEntry {
	first, rest, _ := strings.Cut(strings.TrimLeft(string(p), " \t\r\n"), "\n")
	e := cacheEntry{identity: strings.TrimSpace(first)}
	for line := range strings.SplitSeq(rest, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch {
		case k == "key" && e.keyState == "" && isHex(v, 64):
			e.keyState = v
		case k == "src" && isHex(v, 32) && len(e.sources) < maxVouched && !slices.Contains(e.sources, v):
			e.sources = append(e.sources, v)
		}
	}
	if e.keyState == "" {
		e.sources = nil
	}
	return e
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// vouches reports whether the entry holds a check of the source's
// passphrase against the key file in state ks.
func (e cacheEntry) vouches(ks, srcPrint string) bool {
	return e.keyState != "" && e.keyState == ks && srcPrint != "" && slices.Contains(e.sources, srcPrint)
}

// with returns the entry with srcPrint added to its checked sources.
func (e cacheEntry) with(srcPrint string) cacheEntry {
	if srcPrint == "" || slices.Contains(e.sources, srcPrint) {
		return e
	}
	src := append(slices.Clone(e.sources), srcPrint)
	if len(src) > maxVouched {
		src = src[len(src)-maxVouched:]
	}
	e.sources = src
	return e
}
