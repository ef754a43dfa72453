package storage

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxMetadataBytes bounds discovery and JWKS documents.
const maxMetadataBytes = 1 << 20

// errUnknownKid: the issuer does not publish the token's kid.
var errUnknownKid = errors.New("unknown kid")

// keysUnavailableError: the issuer's keys could not be fetched. Its text
// describes the failure without echoing response bodies.
type keysUnavailableError struct{ msg string }

func (e *keysUnavailableError) Error() string { return e.msg }

// publicKey is one verification key of the issuer.
type publicKey struct {
	key crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey
	alg string           // the JWK's alg, "" when the JWK does not say
}

// keyCache fetches the issuer's keys lazily (discovery → jwks_uri → JWKS),
// each fetch bounded by timeout, and caches them for ttl by the injected
// clock. An unknown kid triggers a refetch at most once per minInterval;
// after a failed fetch no new fetch is tried for minInterval, and keys
// already known stay usable until a fetch succeeds.
type keyCache struct {
	issuer      string
	client      *http.Client
	now         func() time.Time
	timeout     time.Duration
	ttl         time.Duration
	minInterval time.Duration

	fetchMu sync.Mutex // serializes fetches

	mu             sync.Mutex
	keys           map[string]publicKey
	fetchedAt      time.Time // last successful fetch
	gen            int       // bumped on every fetch attempt
	lastAttempt    time.Time
	lastErr        error // error of the last attempt, nil after a success
	lastUnknownKid time.Time
}

func (c *keyCache) lookup(ctx context.Context, kid string) (publicKey, error) {
	fetched := false
	for {
		c.mu.Lock()
		now := c.now()
		k, known := c.keys[kid]
		expired := c.keys == nil || !now.Before(c.fetchedAt.Add(c.ttl))
		backoff := c.lastErr != nil && now.Before(c.lastAttempt.Add(c.minInterval))
		fetch := false
		switch {
		case fetched:
		case known && !expired:
			c.mu.Unlock()
			return k, nil
		case expired:
			fetch = !backoff
		default: // fresh keys, unknown kid
			if !backoff && (c.lastUnknownKid.IsZero() || !now.Before(c.lastUnknownKid.Add(c.minInterval))) {
				fetch = true
				c.lastUnknownKid = now
			}
		}
		if !fetch {
			lastErr := c.lastErr
			c.mu.Unlock()
			switch {
			case known:
				return k, nil // possibly stale: the issuer could not be reached
			case lastErr != nil:
				return publicKey{}, lastErr
			}
			return publicKey{}, errUnknownKid
		}
		gen := c.gen
		c.mu.Unlock()

		c.fetchMu.Lock()
		c.mu.Lock()
		again := c.gen == gen // nobody fetched while we waited
		c.mu.Unlock()
		if again {
			keys, err := c.fetch(ctx)
			c.mu.Lock()
			c.gen++
			c.lastAttempt = c.now()
			c.lastErr = err
			if err == nil {
				c.keys = keys
				c.fetchedAt = c.lastAttempt
			}
			c.mu.Unlock()
		}
		c.fetchMu.Unlock()
		fetched = true
	}
}

// fetch gets the issuer's JWKS. It is not bound to the request's
// cancellation (a client hanging up must not poison the cache for
// everyone), only to the fetch timeout.
func (c *keyCache) fetch(ctx context.Context) (map[string]publicKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()

	base := strings.TrimSuffix(c.issuer, "/")
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	status, err := c.getJSON(ctx, base+"/.well-known/openid-configuration", &meta)
	if status == http.StatusNotFound {
		// scitokens-cpp falls back to the OAuth metadata document, appended
		// to the issuer the same way.
		_, err = c.getJSON(ctx, base+"/.well-known/oauth-authorization-server", &meta)
	}
	if err != nil {
		return nil, &keysUnavailableError{"cannot fetch the issuer's metadata: " + err.Error()}
	}
	if meta.Issuer != c.issuer {
		return nil, &keysUnavailableError{"the issuer's metadata names a different issuer"}
	}
	ju, err := url.Parse(meta.JWKSURI)
	if err != nil || (ju.Scheme != "https" && ju.Scheme != "http") || ju.Host == "" {
		return nil, &keysUnavailableError{"the issuer's metadata has no valid jwks_uri"}
	}
	if strings.HasPrefix(c.issuer, "https:") && ju.Scheme != "https" {
		return nil, &keysUnavailableError{"the issuer's jwks_uri is not https"}
	}
	var set json.RawMessage
	if _, err := c.getJSON(ctx, ju.String(), &set); err != nil {
		return nil, &keysUnavailableError{"cannot fetch the issuer's JWKS: " + err.Error()}
	}
	keys, err := parseJWKS(set)
	if err != nil {
		return nil, &keysUnavailableError{"the issuer's JWKS is unusable: " + err.Error()}
	}
	return keys, nil
}

// getJSON GETs u and decodes a JSON body of at most maxMetadataBytes into v.
// Error texts name the URL and the status, never the body.
func (c *keyCache) getJSON(ctx context.Context, u string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("bad URL %q", u)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("GET %s: no answer within %s", u, c.timeout)
		}
		return 0, fmt.Errorf("GET %s: %s", u, transportReason(err))
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: reading the answer failed", u)
	}
	if len(body) > maxMetadataBytes {
		return resp.StatusCode, fmt.Errorf("GET %s: answer larger than %d bytes", u, maxMetadataBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: answer is not the expected JSON", u)
	}
	return resp.StatusCode, nil
}

// transportReason names a transport failure briefly (connection refused,
// certificate problems, ...) without URL repetition.
func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// jwk is the subset of RFC 7517/7518 key fields we read.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a JWK set and returns its usable signature keys by kid:
// RSA keys of at least 2048 bits (alg RS256 or unset) and EC P-256 keys
// (alg ES256 or unset), use "sig" or unset, with a kid. Other entries are
// skipped, not fatal (an issuer may publish keys we do not use). For a
// duplicated kid the first usable entry wins. A set without any usable key
// is an error.
func parseJWKS(data []byte) (map[string]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, errors.New("not a JWK set")
	}
	keys := make(map[string]publicKey)
	for _, raw := range set.Keys {
		var k jwk
		if json.Unmarshal(raw, &k) != nil || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if _, dup := keys[k.Kid]; dup {
			continue
		}
		pk, err := k.publicKey()
		if err != nil {
			continue
		}
		keys[k.Kid] = pk
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable RS256/ES256 signature key with a kid")
	}
	return keys, nil
}

func (k *jwk) publicKey() (publicKey, error) {
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return publicKey{}, errors.New("alg not RS256")
		}
		n, err := b64url(k.N)
		if err != nil || len(n) == 0 {
			return publicKey{}, errors.New("bad n")
		}
		e, err := b64url(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return publicKey{}, errors.New("bad e")
		}
		var ev int64
		for _, b := range e {
			ev = ev<<8 | int64(b)
		}
		if ev < 3 || ev%2 == 0 || ev > 1<<31-1 {
			return publicKey{}, errors.New("bad e")
		}
		nn := new(big.Int).SetBytes(n)
		if nn.BitLen() < 2048 {
			return publicKey{}, errors.New("RSA key shorter than 2048 bits")
		}
		return publicKey{key: &rsa.PublicKey{N: nn, E: int(ev)}, alg: k.Alg}, nil
	case "EC":
		if k.Crv != "P-256" || (k.Alg != "" && k.Alg != "ES256") {
			return publicKey{}, errors.New("not a P-256/ES256 key")
		}
		x, err1 := b64url(k.X)
		y, err2 := b64url(k.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("bad x/y")
		}
		pt := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
		if err != nil {
			return publicKey{}, errors.New("point not on P-256")
		}
		return publicKey{key: pub, alg: k.Alg}, nil
	}
	return publicKey{}, errors.New("unsupported kty")
}

// b64url decodes base64url with or without padding.
func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
