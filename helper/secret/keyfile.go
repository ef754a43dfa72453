package secret

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// Key-file format constants.
const (
	// KeyFileFormat is the value of the "format" field of every key file.
	KeyFileFormat = "tokenhelper-key"
	// KeyFileVersion is the newest key-file version this package reads and
	// the one it writes.
	KeyFileVersion = 1

	// DefaultWorkFactor is the scrypt work factor (log2 N) for new
	// passphrases: age's default, about one second and 256 MiB.
	DefaultWorkFactor = 18
	// DefaultMaxWorkFactor is the largest scrypt work factor accepted when
	// unlocking (log2 N = 20 needs 1 GiB), so a tampered key file cannot make
	// an unlock run for minutes or exhaust memory.
	DefaultMaxWorkFactor = 20

	// maxKeyFileSize bounds what is read from a key file.
	maxKeyFileSize = 64 << 10
)

// Protection says how the identity in a key file is stored.
type Protection string

// The protections.
const (
	// Passphrase: the identity is an armored age file encrypted with scrypt
	// under the user's passphrase.
	Passphrase Protection = "passphrase"
	// Plaintext: the identity is stored unencrypted (explicit opt-in).
	Plaintext Protection = "plaintext"
)

// KeyFile is the on-disk form of a profile's key: JSON, versioned, with the
// public recipient in clear and the identity protected as Protection says.
//
//	{
//	  "format": "tokenhelper-key",
//	  "version": 1,
//	  "recipient": "age1…",
//	  "protection": "passphrase",
//	  "identity": "-----BEGIN AGE ENCRYPTED FILE-----\n…",
//	  "created": "2026-11-22T10:00:00Z"
//	}
//
// Its String and GoString methods never print Identity.
type KeyFile struct {
	Format     string     `json:"format"`
	Version    int        `json:"version"`
	Recipient  string     `json:"recipient"`
	Protection Protection `json:"protection"`
	// Identity is an armored age scrypt file containing the age identity
	// (Protection Passphrase), or the identity itself, AGE-SECRET-KEY-1…
	// (Protection Plaintext).
	Identity string    `json:"identity"`
	Created  time.Time `json:"created,omitzero"`
}

// String describes the key file without its identity.
func (kf *KeyFile) String() string {
	if kf == nil {
		return "KeyFile(nil)"
	}
	return fmt.Sprintf("KeyFile(v%d %s %s)", kf.Version, kf.Protection, kf.Recipient)
}

// GoString is String, so %#v cannot print the identity either.
func (kf *KeyFile) GoString() string { return kf.String() }

// ParseKeyFile parses and validates a key file. It never decrypts, so it is
// cheap; it checks that the recipient is a valid age X25519 recipient, that
// a passphrase-protected identity is an armored age file with exactly one
// scrypt stanza, and that a plaintext identity matches the recipient.
// Errors are plain and never contain identity material; [Key] methods wrap
// them into *helper.Error with the profile and path.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key file is larger than %d bytes", maxKeyFileSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("key file is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var kf KeyFile
	if err := dec.Decode(&kf); err != nil {
		return nil, errors.New("key file is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("key file has data after its JSON object")
	}
	if kf.Format != KeyFileFormat {
		return nil, errors.New("not a tokenhelper key file")
	}
	if kf.Version > KeyFileVersion {
		return nil, fmt.Errorf("key file version %d was written by a newer tokenhelper (this one reads up to %d)", kf.Version, KeyFileVersion)
	}
	if kf.Version < 1 {
		return nil, fmt.Errorf("key file has invalid version %d", kf.Version)
	}
	rcpt, err := age.ParseX25519Recipient(kf.Recipient)
	if err != nil {
		return nil, errors.New("key file has an invalid recipient")
	}
	switch kf.Protection {
	case Passphrase:
		if _, err := scryptWorkFactor(kf.Identity); err != nil {
			return nil, err
		}
	case Plaintext:
		id, err := age.ParseX25519Identity(strings.TrimSpace(kf.Identity))
		if err != nil {
			return nil, errors.New("key file has an invalid plaintext identity")
		}
		if id.Recipient().String() != rcpt.String() {
			return nil, errors.New("key file's identity does not match its recipient")
		}
	default:
		return nil, errors.New("key file has an unknown protection")
	}
	return &kf, nil
}

// Marshal returns the key file's JSON text.
func (kf *KeyFile) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// scryptWorkFactor checks that s is an armored age file whose header has
// exactly one stanza, of type scrypt, and returns its work factor.
func scryptWorkFactor(s string) (int, error) {
	if !strings.HasPrefix(strings.TrimLeft(s, " \t\r\n"), armor.Header) {
		return 0, errors.New("key file's encrypted identity is not an armored age file")
	}
	hdr, err := age.ExtractHeader(armor.NewReader(strings.NewReader(s)))
	if err != nil {
		return 0, errors.New("key file's encrypted identity has a corrupt age header")
	}
	var stanzas []string
	sc := bufio.NewScanner(bytes.NewReader(hdr))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "-> ") {
			stanzas = append(stanzas, line)
		}
	}
	if len(stanzas) != 1 {
		return 0, errors.New("key file's encrypted identity must have exactly one passphrase stanza")
	}
	f := strings.Fields(stanzas[0])
	if len(f) != 4 || f[1] != "scrypt" {
		return 0, errors.New("key file's encrypted identity is not passphrase-encrypted")
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 1 || n > 30 {
		return 0, errors.New("key file's encrypted identity has an invalid scrypt work factor")
	}
	return n, nil
}

// clip shortens attacker-controlled strings before they go into messages.
func clip(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
