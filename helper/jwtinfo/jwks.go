package jwtinfo

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// publicKey is one entry of a JWK Set (RFC 7517) after parsing. Key is
// nil when the entry cannot be used; Why then says why.
type publicKey struct {
	KeyID string
	Kty   string
	Alg   string // the JWK's optional "alg"
	Key   crypto.PublicKey
	Why   string
}

// jwk is the wire form of an RFC 7517/7518 public key.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JWK Set document. One unusable key does not spoil the
// others: it is returned with Why set. An error means the document itself
// is not a JWK Set.
func parseJWKS(b []byte) ([]publicKey, error) {
	var set struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	if set.Keys == nil {
		return nil, errors.New(`no "keys" array`)
	}
	out := make([]publicKey, 0, len(*set.Keys))
	for _, raw := range *set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			out = append(out, publicKey{Why: "malformed JWK"})
			continue
		}
		pk := publicKey{KeyID: k.Kid, Kty: k.Kty, Alg: k.Alg}
		if k.Use != "" && k.Use != "sig" {
			pk.Why = fmt.Sprintf("its use is %q, not sig", k.Use)
		} else if key, err := k.publicKey(); err != nil {
			pk.Why = err.Error()
		} else {
			pk.Key = key
		}
		out = append(out, pk)
	}
	return out, nil
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := b64int(k.N, "n")
		if err != nil {
			return nil, err
		}
		e, err := b64int(k.E, "e")
		if err != nil {
			return nil, err
		}
		if n.BitLen() < 1024 {
			return nil, fmt.Errorf("RSA key of %d bits is too small", n.BitLen())
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("RSA exponent e is invalid")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported EC curve %q", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64fixed(k.X, "x", size)
		if err != nil {
			return nil, err
		}
		y, err := b64fixed(k.Y, "y", size)
		if err != nil {
			return nil, err
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, errors.New("EC point is not on the curve")
		}
		return pub, nil
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", k.Crv)
		}
		x, err := b64dec(k.X, "x")
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("Ed25519 key x has the wrong length")
		}
		return ed25519.PublicKey(x), nil
	case "":
		return nil, errors.New("no kty")
	}
	return nil, fmt.Errorf("unsupported key type %q", k.Kty)
}

// b64dec decodes a base64url JWK member, tolerating "=" padding.
func b64dec(s, name string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("member %s is missing or not base64url", name)
	}
	return b, nil
}

func b64int(s, name string) (*big.Int, error) {
	b, err := b64dec(s, name)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// b64fixed decodes a coordinate and left-pads it to size bytes (some
// encoders drop leading zero bytes).
func b64fixed(s, name string, size int) ([]byte, error) {
	b, err := b64dec(s, name)
	if err != nil {
		return nil, err
	}
	if len(b) > size {
		return nil, fmt.Errorf("member %s is too long for the curve", name)
	}
	out := make([]byte, size)
	copy(out[size-len(b):], b)
	return out, nil
}

// keyFamily is the JWK kty an alg needs.
func keyFamily(alg string) string {
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		return "RSA"
	case strings.HasPrefix(alg, "ES"):
		return "EC"
	case alg == "EdDSA":
		return "OKP"
	}
	return ""
}
