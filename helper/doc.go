// Package helper holds the core vocabulary of tokenhelper shared by every
// layer: a token Request, the Token that answers it, the Backend interface
// every token source implements, and the typed errors (with their exit
// codes) that callers act on.
//
// Sub-packages implement the mechanisms: discovery (WLCG Bearer Token
// Discovery), jwtinfo (token inspection and verification), config (TOML
// profiles and URL routing), cache (the cross-process token cache) and
// secret (encryption at rest).
//
// Imports flow one way: cmd → integrations, plugins → helper. Nothing in
// helper imports plugins or integrations.
package helper
