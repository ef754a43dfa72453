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
// scrypt, about a second and 256 MiB) or from the unlock cache. Changing the
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
// [Unlocker.Open] looks for a passphrase in, in order: the environment
// variable named by passphrase_env, the first line of passphrase_file
// (refused unless the file is private: mode 0600 or stricter), the first
// line printed by passphrase_cmd (run as /bin/sh -c CMD in its own process
// group, with stdin from /dev/null, stderr passed through, and a deadline
// after which the whole group is killed: it must not be interactive). A
// passphrase from a source is checked against the key file: by scrypt, or
// by an unlock-cache entry that already checked this source against this
// key file (see "What an unlock vouches for" below). With no source, it
// uses the unlock cache, and only then a prompt on a terminal (/dev/tty,
// no echo). With no terminal it fails with a KindLoginNeeded error naming
// these options. Leading and trailing white space is ignored in
// passphrases from every source. A forgotten passphrase is never a dead
// end: [Key.Forget] removes the key and its cache entry without asking for
// it, and while an unlock is still cached the passphrase can be changed
// without knowing the old one ([Unlocker.ChangePassphrase]).
//
// # Security trade-off of the unlock cache
//
// After a passphrase is checked by scrypt (typed at a prompt, or given by
// a passphrase source), the decrypted identity is put into the kernel's
// per-user keyring (@u) as a key of type "user" named
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
// unlock. (Where the passphrase comes from a source, such an attacker can
// usually read the source too: the file, a job's environment, the
// command.) Where the keyring is not available (seccomp filters in
// containers reject keyctl with EPERM or ENOSYS) the cache is silently
// absent and every unlock needs a passphrase source or a prompt.
//
// # What an unlock vouches for
//
// Without the cache, a batch job whose passphrase comes from a source would
// run scrypt (0.9 s of CPU and 256 MiB) at every refresh. With it, a cache
// entry stands in for that check, by this rule.
//
// Next to the identity, an entry records the state of the key file it was
// unlocked from (a SHA-256 of the key file's encrypted identity, which
// changes at every passphrase change: new scrypt salt) and the passphrase
// sources checked against that state, each by a print: a hash of what
// configures the source (the variable's name; the file's path, device,
// inode and modification and change times, on Linux, elsewhere its
// modification time; the command line), never of the passphrase. A
// passphrase from a source is accepted without scrypt when the entry
// holds that source's print for the key file's current state. Otherwise it
// is checked by scrypt, as without a cache: a wrong one is KindDenied
// (the entry is left alone: it still serves opens without a source), a
// right one adds the source to the entry (at most 8; the oldest goes) or,
// when the key file changed, replaces the entry. Adding a source does not
// extend the entry's timeout, which counts from the unlock that made it,
// so every source is checked by scrypt at least once per unlock_for. An
// entry made by a prompt, by creating the key at a prompt or by
// [Unlocker.ChangePassphrase] vouches for no source.
//
// So a source that now gives a different passphrase is checked again by
// scrypt, and refused if that passphrase is wrong, at its next use after
// any of: a change of the key file's passphrase (tokenhelper passwd, on
// this node or on another sharing the key file); a change of the
// passphrase file (edited or replaced); a switch to another source; a
// lock or logout on this node; the end of the unlock. Not noticed before
// the unlock ends is a new value in the same environment variable, or a
// new output of the same command, while the key file stays as it was: the
// cached identity keeps serving that source, as it serves a job with no
// passphrase at all. To have such a change checked at once, run
// `tokenhelper lock` on the node (the keyring is per node), or make the
// change with `tokenhelper passwd`, which every node notices.
//
// Why the entry does not check the passphrase itself: a check costs an
// attacker what it costs us, because whoever can read the entry (your uid,
// root) can run the same check. A fast verifier (a hash of the
// passphrase, or a MAC of it keyed with anything in the entry, even a key
// derived from the identity) would let them test guesses offline at
// millions per second, instead of one scrypt (a second and 256 MiB) per
// guess against the key file. The identity in the entry already gives
// them this profile's secrets, but the passphrase can be worth more: the
// same passphrase may protect other profiles, other key files or other
// accounts. A truncated verifier still leaks as many bits as it keeps (a
// 2^bits speed-up of that attack), and a verifier as slow as scrypt costs
// what the cache is there to save. So an entry holds nothing derived from
// a passphrase, and the key file's protection is as strong with the cache
// as without it. What a wrong passphrase accepted from the cache gains is
// the identity, which any process of your uid can read from the entry
// anyway; and with no entry for the current key file, a wrong passphrase
// is refused as before.
//
// Nothing in this package writes a passphrase or an identity into argv,
// into the environment of a child process, into a log line or into an
// error message. [Identity] formats as its public recipient only.
package secret
