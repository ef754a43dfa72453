// Package discovery implements WLCG Bearer Token Discovery (WLCG AuthZ WG,
// "WLCG Bearer Token Discovery", zenodo 3937438), reading and writing.
//
// # Reading
//
// [Find] takes these steps in order, $ID being the effective uid
// ([Env.UID]):
//
//  1. BEARER_TOKEN set: its value.
//  2. BEARER_TOKEN_FILE set: the contents of the file it names.
//  3. XDG_RUNTIME_DIR set: the contents of $XDG_RUNTIME_DIR/bt_u$ID.
//  4. The contents of /tmp/bt_u$ID ([Env.TmpDir] in place of /tmp).
//
// At every step leading and trailing C isspace characters (space, \t, \n,
// \v, \f, \r, exactly those) are stripped. A value that is empty after
// stripping, a variable set to the empty string, an unset variable and a
// missing file (ENOENT, including a dangling symlink) all move on to the
// next step; step 4 is also reached after step 3 when the file there is
// missing or empty, as the spec's "continue with the next step" and the
// xrootd client do. A step that finds something stops discovery: a valid
// RFC 6750 b64token is returned with the step that found it; anything else
// is an error (KindInvalidToken for a malformed token, KindNoToken for a
// file that exists but cannot be read — EACCES, EISDIR, ELOOP, ... — as
// xrootd does). Nothing found is a KindNoToken error listing every step.
//
// Beyond the spec, as a credential tool must:
//   - files are read up to [Env.MaxFileSize] (64 KiB by default); a FIFO
//     or terminal is read with a deadline ([Env.ReadTimeout]), so a bad
//     path never hangs;
//   - in steps 3 and 4 (the default locations, step 4 in a shared
//     directory) a file, or a symbolic link, owned by another user is
//     refused (KindUnsafe): it may have been planted to hand you someone
//     else's token. BEARER_TOKEN_FILE is the user's explicit choice and may
//     name a file owned by someone else (a robot token, an HTCondor
//     credential);
//   - facts that make other consumers fail are reported as [Warning]s
//     in the [Result]: group/other permission bits (xrootd refuses the
//     file), files over 4096 bytes (xrootd's limit), whitespace around
//     BEARER_TOKEN (gfal2's HTTP plugin sends it untrimmed).
//
// Error messages name the step and the path, never the token (and never a
// BEARER_TOKEN_FILE value that itself looks like a token).
//
// # Writing
//
// [Write] puts a token where a later [Find] will pick it up: by default
// $XDG_RUNTIME_DIR/bt_u$ID when XDG_RUNTIME_DIR is set, else /tmp/bt_u$ID
// ([DefaultPath]). It never writes to the BEARER_TOKEN_FILE path unless
// that path is passed explicitly in [WriteOptions.Path]. A token written at
// the default location is hidden from [Find] by BEARER_TOKEN and
// BEARER_TOKEN_FILE: [Shadowed] names what would hide it, so a command can
// warn. The write is atomic (temporary file with an unpredictable name in
// the same directory, fsync, rename, fsync of the directory), mode 0600,
// token plus one newline. It refuses to follow a symbolic link owned by
// someone else, to replace a file owned by someone else or anything that is
// not a regular file, and to write into a world-writable directory without
// the sticky bit.
//
// Everything the procedure depends on (environment, uid, /tmp, limits) is
// in [Env]: tests never touch the machine's real files. [OSEnv] is the
// production environment.
package discovery
