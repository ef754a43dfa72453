// Package oidcagent is the oidc-agent backend: it asks a running
// oidc-agent (indigo-dc/oidc-agent, tested against 4.2.6) for access
// tokens, so users keep the accounts they already have.
//
// It implements the agent's client IPC protocol directly, as documented in
// oidc-agent's "IPC-API": one JSON request written in a single write on a
// fresh connection, the reply read to EOF. Requests go in plain JSON (the
// agent answers plain requests in plain text). The socket is found the way
// oidc-agent's own clients find it:
//
//   - OIDC_SOCK: the agent's UNIX socket;
//   - OIDC_REMOTE_SOCK=host[:port] (default port 42424): a central
//     oidc-agent-server over TCP, asked when OIDC_SOCK is unset, or when
//     the local agent has no account of the requested name;
//   - otherwise the oidc-agent 5.x service socket
//     $TMPDIR/oidc-agent-service-$UID/oidc-agent.sock (TMPDIR default /tmp).
//
// Requests carry the account short name or the issuer URL, scopes and
// audiences (space-separated), min_valid_period in seconds (-1 forces a
// new token) and application_hint "tokenhelper"; loaded_accounts lists the
// loaded accounts.
//
// The agent's expires_at is wrong for tokens requested with scope or
// audience (it reports the default token's expiry), so the expiry of a JWT
// access token is read from its exp claim; opaque tokens keep expires_at.
//
// Every exchange has a deadline (the profile's timeout, default
// DefaultTimeout, or the context's if earlier) covering dial, write and
// read: oidc-agent serves one request at a time and blocks all clients
// while it waits for a password popup or a slow provider. Its queue of
// waiting connections is short (listen backlog 5), and Go's non-blocking
// connect fails with EAGAIN when it is full, so with many simultaneous
// clients the failures that provably left the agent untouched (EAGAIN at
// connect, a write that delivered nothing, a reset of the UNIX socket
// before any reply byte) are retried with jittered backoff until the
// deadline, which then ends in an ErrBusy error; nothing the agent may
// have acted on is asked twice (see retry.go). Replies are
// limited to MaxReply bytes. Errors are *helper.Error values naming the fix
// (oidc-agent-service, oidc-add, oidc-gen); no error ever contains a reply
// body, since a reply may carry a token.
package oidcagent
