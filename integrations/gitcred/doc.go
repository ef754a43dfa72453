// Package gitcred implements git's credential helper protocol for
// tokenhelper, as specified in git-credential(1) ("INPUT/OUTPUT FORMAT")
// and gitcredentials(7) ("CUSTOM HELPERS"), including the additions of git
// 2.40 (password_expiry_utc), 2.41 (wwwauth[]) and 2.46 (capabilities:
// capability[]=authtype, authtype, credential, ephemeral).
//
// git runs a helper as `git credential-NAME ACTION` (or a `!shell` snippet
// or an absolute path) with a record of key=value lines on stdin, ended by
// a blank line or end of file. For `get` the helper prints the attributes
// it adds; for `store` and `erase` it prints nothing; unknown actions are
// ignored. git ignores the helper's exit status: a helper declines by
// printing nothing, and git asks the next helper (or the person).
//
// What this package does with it:
//
//   - Parse reads one record robustly: lines up to [MaxLine], records up to
//     [MaxRecord], unknown keys ignored, `key[]` lists (an empty value
//     clears the list), `url=` expanded the way git expands it. Bad input
//     (a NUL byte, a line without "=", an oversized record) is a
//     *helper.Error of KindUsage whose message never repeats the input.
//   - [Credential.Target] turns protocol, host (with port) and path (sent
//     only with credential.useHttpPath) into a config.RouteTarget.
//   - [Handler] answers `get` from a [Source] (URL → token through the
//     routes; nil means decline), answers `erase` by asking the Source to
//     forget the token git reports as refused, ignores `store`, and
//     answers `capability`.
//
// The answer to `get` depends on the git that asks. git ≥ 2.46 announces
// capability[]=authtype; the helper then answers
//
//	capability[]=authtype
//	authtype=Bearer
//	credential=<token>
//	ephemeral=1
//	password_expiry_utc=<unix time>
//
// and git sends "Authorization: Bearer <token>". Older git (Debian
// bookworm has 2.39) only knows user name and password, so the token goes
// as the password of HTTP Basic authentication:
//
//	username=oauth2
//	password=<token>
//	password_expiry_utc=<unix time>
//
// A server that answered git's first request with only a Basic challenge
// (wwwauth[], git ≥ 2.41) gets the Basic form even from a new git.
//
// The package reads and writes only the io.Reader and io.Writer it is
// given and never touches the process (no os.*), so the whole protocol
// runs inside tests.
package gitcred
