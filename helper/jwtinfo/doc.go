// Package jwtinfo inspects and verifies bearer tokens for `tokenhelper
// inspect`.
//
// It implements the reading side of RFC 7519 (JSON Web Token) and RFC 7515
// (JWS, compact serialization), the claims and scope rules of the WLCG
// Common JWT Profile v1.0 (zenodo 3460258) as profile warnings, key
// discovery through OpenID Connect Discovery 1.0 (`iss` +
// `/.well-known/openid-configuration` → `jwks_uri`) and RFC 7517 JSON Web
// Keys (RSA, EC P-256/384/521 and Ed25519 public keys), and the RFC 6750
// b64token syntax for what counts as a bearer token at all.
//
// The pieces, in the order `tokenhelper inspect` uses them:
//
//	in, err := jwtinfo.ReadArg(arg, stdin)  // TOKEN | FILE | - (bounded; in.Notes: advice)
//	info, err := jwtinfo.Parse(in.Raw)      // no verification, never panics
//	warns := jwtinfo.Check(info, now)       // WLCG profile + validity warnings
//	jwtinfo.Render(w, info, warns, opts)    // "Label        : value" lines
//	b, err := jwtinfo.JSON(info, warns, now) // --json (see Report for fields)
//	v, err := jwtinfo.Verify(ctx, raw, vopts) // --verify: discovery, JWKS, signature, exp/nbf/aud
//	jwtinfo.RenderVerdict(w, v)
//
// Nothing in this package prints, logs or returns the raw token or its
// signature: errors name URLs and claims, never token material.
package jwtinfo
