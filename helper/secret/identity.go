package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/tokenhelper/tokenhelper/helper"
)

// MaxSecretSize bounds the plaintext [Identity.Open] returns: stored
// secrets are tokens and client secrets, a few KiB at most.
const MaxSecretSize = 1 << 20

// Identity is an unlocked key: it opens secrets sealed with [Key.Seal].
// It formats (%v, %s, %#v) as its public recipient only.
type Identity struct {
	x       *age.X25519Identity
	profile string
}

// Recipient returns the public age recipient (age1…) of the identity.
func (id *Identity) Recipient() string {
	if id == nil || id.x == nil {
		return ""
	}
	return id.x.Recipient().String()
}

// String names the identity by its recipient; it never prints the secret.
func (id *Identity) String() string { return "secret.Identity(" + id.Recipient() + ")" }

// GoString is String.
func (id *Identity) GoString() string { return id.String() }

func (id *Identity) name() string {
	if id == nil || id.profile == "" {
		return "the default profile"
	}
	return "profile " + id.profile
}

func (id *Identity) flag() string {
	if id == nil || id.profile == "" {
		return ""
	}
	return " -p " + id.profile
}

// Open decrypts a secret sealed with [Key.Seal] (binary or armored age).
// A secret sealed to another key is KindLoginNeeded (the key was replaced:
// log in again); a damaged one is KindInternal. Errors never contain any
// part of the ciphertext.
func (id *Identity) Open(ciphertext []byte) ([]byte, error) {
	if id == nil || id.x == nil {
		return nil, helper.Errorf(helper.KindInternal, "secret.Open called without an identity")
	}
	var src io.Reader = bytes.NewReader(ciphertext)
	if bytes.HasPrefix(bytes.TrimLeft(ciphertext, " \t\r\n"), []byte(armor.Header)) {
		src = armor.NewReader(src)
	}
	r, err := age.Decrypt(src, id.x)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, (&helper.Error{Kind: helper.KindLoginNeeded,
				Msg: fmt.Sprintf("a stored secret of %s was encrypted with another key", id.name()), Err: err}).
				WithFix("log in again: tokenhelper login%s", id.flag())
		}
		return nil, id.damaged(err)
	}
	out, err := io.ReadAll(io.LimitReader(r, MaxSecretSize+1))
	if err != nil {
		return nil, id.damaged(err)
	}
	if len(out) > MaxSecretSize {
		return nil, id.damaged(errors.New("too large"))
	}
	return out, nil
}

func (id *Identity) damaged(err error) *helper.Error {
	return (&helper.Error{Kind: helper.KindInternal,
		Msg: fmt.Sprintf("a stored secret of %s is damaged and cannot be decrypted", id.name()), Err: err}).
		WithFix("log in again: tokenhelper login%s", id.flag())
}
