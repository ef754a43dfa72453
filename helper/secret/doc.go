// Package secret keeps the native backend's long-lived secrets (refresh
// tokens, client secrets, registration access tokens) encrypted at rest,
// finds the passphrase that unlocks them, and remembers an unlock for a
// bounded time.
//
// Formats and mechanisms it implements: the age v1 file format
// (https://age-encryption.org/v1, via filippo.io/age) for every encrypted
// byte, and the Linux kernel key retention service (keyrings(7),
// user-keyring(7), keyctl(2)) for the unlock cache.
//
// # Two layers
//
// Each profile has a key file (see [KeyFile]) holding an age X25519
// recipient (public) and the matching identity (private), the identity
// encrypted with age's scrypt passphrase encryption. Secrets are encrypted
// to the recipient with [Key.Seal], so persisting a rotated refresh token
// never needs the passphrase. Reading a secret needs the identity
// ([Identity.Open]), which an [Unlocker] obtains from the passphrase (one
// scrypt, about a second) or from the unlock cache. Changing the
// passphrase re-encrypts the identity only; sealed secrets stay valid.
//
// The identity inside a key file is a standard armored age file, so a user
// can always check their data with the age tool alone:
//
//	jq -r .identity KEYFILE | age -d > id.txt   # asks for the passphrase
//	age -d -i id.txt SEALED-SECRET
//
// In plaintext mode (profile setting plaintext = true, for robot accounts on
// locked-down hosts) the key file holds the identity unencrypted: secrets
// are still age files, but anyone who can read the key file can read them.
//
// # Passphrase sources
//
// [Unlocker.Open] tries, in order: the environment variable named by
// passphrase_env, the first line of passphrase_file (refused unless the
// file is private: mode 0600 or stricter), the first line printed by
// passphrase_cmd (run as /bin/sh -c CMD in its own process group, with
// stdin from /dev/null, stderr passed through, and a deadline after which
// the whole group is killed: it must not be interactive), the unlock
// cache, and only then a prompt on a terminal (/dev/tty, no echo). With
// no terminal it fails with a KindLoginNeeded error naming these options.
// Leading and trailing white space is ignored in passphrases from every
// source. A forgotten passphrase is never a dead end: [Key.Forget] removes
// the key and its cache entry without asking for it, and while an unlock
// is still cached the passphrase can be changed without knowing the old
// one ([Unlocker.ChangePassphrase]).
//
// # Security trade-off of the unlock cache
//
// After the passphrase is typed at a prompt, the decrypted identity is put
// into the kernel's per-user keyring (@u) as a key of type "user" named
// "tokenhelper:v1:<id>", with a kernel-enforced timeout (12 hours unless
// unlock_for says otherwise; unlock_for < 0 disables the cache). The
// timeout counts from the unlock and is not extended by use. During that
// time, any process running under the same uid that can reach the user
// keyring can read the identity and so every secret of that profile,
// without a passphrase: your other shells, your cron and batch jobs on the
// same node (which is the point), and also any malware running as you.
// root can read it too (root can become you, and read your files and
// memory anyway). Other users cannot; processes in another user namespace
// (rootless containers) have their own keyrings and cannot; other nodes
// cannot. It never reaches disk or swap: it lives in kernel memory and is
// gone at reboot, when the timeout expires (even if you are still logged
// in, and even if you are not), after [Unlocker.Lock] (a lock command),
// and after `tokenhelper logout`.
// Compared with no cache, an attacker who gets code running as
// you during the window gains the secrets without having to capture the
// passphrase; an attacker arriving after it has to wait for your next
// unlock. Where the keyring is not available (seccomp filters in
// containers reject keyctl with EPERM or ENOSYS) the cache is silently
// absent and every unlock needs a passphrase source or a prompt.
//
// Nothing in this package writes a passphrase or an identity into argv,
// into the environment of a child process, into a log line or into an
// error message. [Identity] formats as its public recipient only.
package secret
