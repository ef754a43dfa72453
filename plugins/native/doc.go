// Package native is tokenhelper's own OAuth 2.0 / OpenID Connect client: the
// "native" backend. It does what `oidc-gen` + `oidc-agent` + `oidc-token`
// (or LSST France's `lsstfr register` / `lsstfr login`) do, without a daemon.
//
// Specifications it implements, as a client:
//
//   - OpenID Connect Discovery 1.0 and RFC 8414 (provider metadata);
//   - RFC 7591 dynamic client registration and RFC 7592 registration
//     management (reading is not needed; deleting at logout);
//   - RFC 8628 device authorization grant, with the polling rules of its
//     section 3.5 (authorization_pending, slow_down adds 5 s for this and
//     every later poll, access_denied, expired_token);
//   - RFC 6749 refresh (section 6), resource owner password credentials
//     (4.3) and client credentials (4.4) grants, client authentication by
//     client_secret_basic (2.3.1, form-encoded credentials) or
//     client_secret_post, and public clients;
//   - RFC 8693 token exchange for down-scoping when a profile sets
//     exchange = true; otherwise down-scoping is a refresh with scope and
//     audience parameters, as oidc-agent does with INDIGO IAM;
//   - RFC 7009 token revocation at logout.
//
// It speaks the token endpoint itself instead of going through
// golang.org/x/oauth2: that package cannot send scope or audience with a
// refresh, has no token exchange, sends no client authentication with a
// device authorization request, polls on wall-clock tickers (no injected
// clock, no per-state callbacks for the user), and auto-detects the client
// authentication style by retrying failures — which can replay a rotated,
// single-use refresh token. Here the style is always the one the client was
// registered with.
//
// # State
//
// Per profile, in $XDG_STATE_HOME/tokenhelper/profiles/NAME/ (mode 0700):
//
//	account.json  issuer, endpoints from discovery, client id, how the client
//	              authenticates, registration URI, granted scopes, session
//	              (refresh token) expiry when known, and the secrets — client
//	              secret, refresh token, registration access token — each an
//	              age file (base64 in the JSON) encrypted to the profile's key
//	key.json      the profile's age key (see helper/secret): the identity is
//	              encrypted with the passphrase (scrypt) unless the profile is
//	              plaintext = true
//
// Both are 0600 and replaced atomically (temporary file, fsync, rename,
// fsync of the directory). Access tokens are not kept here: the token cache
// (helper/cache) holds them, unencrypted and 0600, so the warm path needs
// no passphrase. Writing a rotated refresh token needs only the public half
// of the key, so a refresh never asks for the passphrase to store its
// result; reading the refresh token needs the identity, which comes from a
// passphrase source, the kernel-keyring unlock cache, or a prompt (see
// helper/secret for the trade-off of the unlock cache).
//
// # Refresh-token rotation and crashes
//
// A refresh runs under the profile lock (cache.LockProfile in
// $XDG_STATE_HOME/tokenhelper/locks): read account.json → refresh → write
// the rotated refresh token → release. So concurrent processes, whatever
// scopes they ask for, never present the same refresh token twice, and a
// process that waited for the lock reads the token its predecessor stored.
// The key's public half is loaded before the request is sent, so once the
// answer arrives only an encryption and one atomic write stand between
// the provider's rotation and the new token being on disk.
//
// What a crash does, by the moment it happens (SIGKILL included):
//
//   - before the refresh request has been handled by the provider: nothing
//     changed; the stored refresh token is still the valid one, and the
//     next process uses it;
//   - while account.json is being replaced: the rename is atomic, so the
//     file holds the old or the new refresh token, never a mix;
//   - after the provider rotated the token, once the temporary file that
//     replaces account.json is written but before its rename: the stored
//     token is dead, the live one is in that leftover file. The next
//     refresh gets invalid_grant for the stored token, finds the leftover
//     (under the profile lock no write is in progress, so every temporary
//     file is a leftover), goes on with its refresh token and stores the
//     successor. (The reliability campaign, docs/reliability.md, found
//     every session its SIGKILLs lost here.)
//   - after the provider rotated the token but before the temporary file
//     is complete (the answer in flight, or the file cut short): the new
//     token is gone with the process. No client can prevent this: only
//     the provider knows the new token until it answers. The next refresh
//     gets invalid_grant; the backend then removes the dead refresh token
//     from account.json (so later calls fail at once without asking the
//     provider) and reports "session expired: run tokenhelper login -p
//     NAME" with exit code 4. Providers that do not rotate refresh tokens
//     (INDIGO IAM's default) are not affected at all.
//
// Leftover temporary files are removed once a refresh succeeds (those
// older than a minute) or a session is found dead.
//
// # Errors
//
// invalid_grant on refresh is KindLoginNeeded ("session expired");
// invalid_client is KindConfig (the client was deleted at the provider:
// register again); invalid_scope and access_denied are KindDenied; network
// failures, timeouts, 5xx answers and unparsable answers are
// KindUnavailable. No message ever contains a token, a client secret or a
// passphrase: provider error descriptions are shown cleaned of control
// characters and cut short, request bodies never.
package native
