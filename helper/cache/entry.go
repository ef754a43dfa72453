package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// FormatVersion is the version of the entry file format written by this
// package. An entry with any other version is treated as a miss and
// overwritten.
const FormatVersion = 1

// MaxEntrySize is the largest entry file read. A larger file is treated as
// corrupt (a miss) and overwritten.
const MaxEntrySize = 64 << 10

// maxProfileInName bounds the readable profile part of a file name.
const maxProfileInName = 48

// key identifies one cache entry: a normalized (profile, scopes, audiences).
type key struct {
	profile   string
	scopes    []string
	audiences []string
}

func keyOf(req helper.Request) key {
	n := req.Normalized()
	return key{profile: n.Profile, scopes: n.Scopes, audiences: n.Audiences}
}

// base is the file name of the entry without extension:
// <sanitised profile>-<first 16 hex of sha256(profile\0scopes\0audiences)>.
func (k key) base() string {
	h := sha256.New()
	h.Write([]byte(k.profile))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(k.scopes, " ")))
	h.Write([]byte{0})
	h.Write([]byte(strings.Join(k.audiences, " ")))
	return sanitizeProfile(k.profile) + "-" + hex.EncodeToString(h.Sum(nil))[:16]
}

func (k key) equal(o key) bool {
	return k.profile == o.profile && slices.Equal(k.scopes, o.scopes) && slices.Equal(k.audiences, o.audiences)
}

// sanitizeProfile makes a profile name safe and readable as a file-name
// prefix: only [A-Za-z0-9._-] survive (others become '_'), no leading dot,
// at most maxProfileInName bytes, "_" for the empty profile. Distinct
// profiles may share a prefix; the hash that follows tells them apart.
func sanitizeProfile(p string) string {
	var b strings.Builder
	for i := 0; i < len(p) && b.Len() < maxProfileInName; i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		case c == '.' && b.Len() > 0:
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// entryFile is the on-disk JSON form of an entry: the helper.Token fields
// inline, plus the format version, when the token was obtained and the
// request key it answers (checked on read, so a file can never answer a
// request it was not written for).
type entryFile struct {
	Version int `json:"version"`
	helper.Token
	ObtainedAt time.Time `json:"obtained_at"`
	Key        keyFile   `json:"key"`
}

type keyFile struct {
	Profile   string   `json:"profile"`
	Scopes    []string `json:"scopes,omitempty"`
	Audiences []string `json:"audiences,omitempty"`
}

// entry is a decoded, validated entry.
type entry struct {
	key        key
	token      helper.Token
	obtainedAt time.Time
}

// errCorrupt marks an entry that is unusable; the message never contains
// any byte of the file.
var errCorrupt = errors.New("corrupt cache entry")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// decodeEntry parses and validates an entry file. Any error wraps
// errCorrupt and describes the problem without quoting file content.
func decodeEntry(data []byte) (*entry, error) {
	if len(data) > MaxEntrySize {
		return nil, corrupt("larger than %d bytes", MaxEntrySize)
	}
	var f entryFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, corrupt("%s", describeJSONError(err))
	}
	if f.Version != FormatVersion {
		return nil, corrupt("format version %d, want %d", f.Version, FormatVersion)
	}
	if f.AccessToken == "" {
		return nil, corrupt("no access token")
	}
	if !helper.IsB64Token(f.AccessToken) {
		return nil, corrupt("access token is not RFC 6750 b64token syntax")
	}
	if f.ObtainedAt.IsZero() {
		return nil, corrupt("no obtained_at")
	}
	k := key{profile: f.Key.Profile, scopes: f.Key.Scopes, audiences: f.Key.Audiences}
	// A key is stored normalized; anything else was not written by us.
	if n := keyOf(helper.Request{Profile: k.profile, Scopes: k.scopes, Audiences: k.audiences}); !n.equal(k) {
		return nil, corrupt("request key is not normalized")
	}
	return &entry{key: k, token: f.Token, obtainedAt: f.ObtainedAt}, nil
}

// describeJSONError summarises a decoding error without echoing input
// (json.SyntaxError messages quote the offending character).
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	case err.Error() == "unexpected end of JSON input":
		return "truncated JSON"
	default:
		return "not a valid entry"
	}
}

// encodeEntry renders e as an entry file.
func encodeEntry(e *entry) ([]byte, error) {
	f := entryFile{
		Version:    FormatVersion,
		Token:      e.token,
		ObtainedAt: e.obtainedAt,
		Key:        keyFile{Profile: e.key.profile, Scopes: e.key.scopes, Audiences: e.key.audiences},
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		// Only a time outside the years 0-9999 gets here.
		return nil, errors.New("cannot encode the cache entry: a time is outside the years 0-9999")
	}
	if len(b)+1 > MaxEntrySize {
		return nil, fmt.Errorf("cache entry would be %d bytes, more than the %d allowed", len(b)+1, MaxEntrySize)
	}
	return append(b, '\n'), nil
}
