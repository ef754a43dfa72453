// Package testbed is a loopback OpenID Connect provider that behaves like
// INDIGO IAM, for tests and for `make demo`.
//
// It is built on github.com/zitadel/oidc/v3/pkg/op (routing, request
// parsing, client authentication, error encoding, discovery, JWKS) and adds
// what op leaves to the implementer or what IAM does differently:
//
//   - access tokens following the WLCG Common JWT Profile v1.0 (RS256 with
//     kid; wlcg.ver "1.0", sub, iss without trailing slash, aud defaulting to
//     https://wlcg.cern.ch/jwt/v1/any, iat, nbf, exp, jti, scope,
//     wlcg.groups, client_id), minted with an injectable [Clock] so tests
//     advance time instead of sleeping;
//   - grants: device code (RFC 8628) with a headless approve/deny API and a
//     small web page, refresh with rotation, refresh-token expiry and
//     scope/audience down-scoping, token exchange (RFC 8693), client
//     credentials, and the password grant for clients flagged for it;
//   - dynamic client registration (RFC 7591) with read and delete through
//     the registration access token (RFC 7592), revocation (RFC 7009) and
//     introspection (RFC 7662);
//   - fault injection per endpoint and request counters per endpoint and
//     grant type;
//   - a record of every secret it issues ([Options].RecordSecret, or the
//     file named by $TOKENHELPER_TESTBED_SECRETS), for leak scans;
//   - tolerance for form bodies that are not URL-encoded, as oidc-agent
//     4.2.6 sends them.
//
// A test starts one with [Start]; the tokenhelper-testbed command uses
// [New] and [Testbed.Close]. The optional WLCG WebDAV storage
// (integrations/testbed/storage) is mounted on its own listener when
// [Options].Storage is set.
//
// The test bed must never be linked into the tokenhelper binary: it is
// imported by tests and by cmd/tokenhelper-testbed only.
package testbed
