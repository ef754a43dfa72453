//go:build linux

package secret

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokenhelper/tokenhelper/helper"
)

// KeyringCache is the unlock cache in the Linux kernel's per-user keyring
// (@u): keys of type "user", described by the cache id, with a
// kernel-enforced timeout. It never calls request_key(2), so no
// /sbin/request-key upcall can run. Where keyctl is refused (containers:
// EPERM, ENOSYS, EACCES) every method returns an error wrapping
// ErrCacheUnavailable and [KeyringCache.Err] says why.
type KeyringCache struct {
	clock helper.Clock

	once sync.Once
	err  error
}

// NewKeyringCache returns the kernel-keyring cache; clock (nil: the system
// clock) only stamps the expiry reported by Get: the kernel enforces it.
func NewKeyringCache(clock helper.Clock) *KeyringCache {
	if clock == nil {
		clock = helper.SystemClock{}
	}
	return &KeyringCache{clock: clock}
}

// Err returns nil when the keyring is usable, else the reason (wrapping
// ErrCacheUnavailable), e.g. "kernel keyring: operation not permitted".
// It is meant for debug output and `tokenhelper status`.
func (c *KeyringCache) Err() error {
	c.once.Do(func() {
		if _, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_USER_KEYRING, true); err != nil {
			c.err = unavailable(err)
		}
	})
	return c.err
}

func unavailable(err error) error {
	return fmt.Errorf("%w: kernel keyring: %v", ErrCacheUnavailable, err)
}

// notFound reports errnos meaning "no such live key".
func notFound(err error) bool {
	return errors.Is(err, unix.ENOKEY) || errors.Is(err, unix.EKEYEXPIRED) || errors.Is(err, unix.EKEYREVOKED)
}

func classify(err error) error {
	if notFound(err) {
		return ErrNotCached
	}
	return unavailable(err)
}

const keyType = "user"

// Get implements Cache.
func (c *KeyringCache) Get(id string) ([]byte, time.Time, error) {
	if err := c.Err(); err != nil {
		return nil, time.Time{}, err
	}
	kid, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, keyType, id, 0)
	if err != nil {
		return nil, time.Time{}, classify(err)
	}
	buf := make([]byte, 1024)
	for range 3 {
		n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, kid, buf, 0)
		if err != nil {
			clear(buf)
			return nil, time.Time{}, classify(err)
		}
		if n <= len(buf) {
			defer clear(buf)
			return parsePayload(buf[:n])
		}
		clear(buf)
		buf = make([]byte, n)
	}
	return nil, time.Time{}, ErrNotCached
}

// Put implements Cache. The key is created in this process's keyring, given
// its timeout, and only then linked into @u, so a crash can never leave a
// key without a timeout in the user keyring.
func (c *KeyringCache) Put(id string, secret []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("unlock cache: ttl must be positive")
	}
	if err := c.Err(); err != nil {
		return err
	}
	secs := int((ttl + time.Second - 1) / time.Second)
	payload := append(fmt.Appendf(nil, "exp=%d\n", c.clock.Now().Add(time.Duration(secs)*time.Second).Unix()), secret...)
	defer clear(payload)

	kid, err := unix.AddKey(keyType, id, payload, unix.KEY_SPEC_PROCESS_KEYRING)
	if err == nil {
		_, err = unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, kid, secs, 0, 0)
		if err == nil {
			_, err = unix.KeyctlInt(unix.KEYCTL_LINK, kid, unix.KEY_SPEC_USER_KEYRING, 0, 0)
		}
		if err != nil {
			// Not linked into @u: if it cannot be destroyed, it still
			// ends with this process's keyring.
			_ = destroy(kid, unix.KEY_SPEC_PROCESS_KEYRING)
			return unavailable(err)
		}
		_, _ = unix.KeyctlInt(unix.KEYCTL_UNLINK, kid, unix.KEY_SPEC_PROCESS_KEYRING, 0, 0)
		return nil
	}
	// No process keyring (some sandboxes): add to @u directly and set the
	// timeout at once; if that fails, take the key away again.
	kid, err = unix.AddKey(keyType, id, payload, unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		return unavailable(err)
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, kid, secs, 0, 0); err != nil {
		if derr := destroy(kid, unix.KEY_SPEC_USER_KEYRING); derr != nil {
			return unavailable(fmt.Errorf("%v, and the key (id %d), which has no timeout, could not be removed from the user keyring: %v", err, kid, derr))
		}
		return unavailable(err)
	}
	return nil
}

// Delete implements Cache.
func (c *KeyringCache) Delete(id string) error {
	if err := c.Err(); err != nil {
		return err
	}
	for range 8 { // more than one only if something raced us
		kid, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, keyType, id, 0)
		if notFound(err) {
			return nil
		}
		if err != nil {
			return unavailable(err)
		}
		if err := destroy(kid, unix.KEY_SPEC_USER_KEYRING); err != nil {
			return fmt.Errorf("kernel keyring: cannot remove key %d: %v", kid, err)
		}
	}
	return fmt.Errorf("kernel keyring: key %q keeps reappearing", id)
}

// destroy invalidates a key (gone at once for everybody) or, on kernels
// without KEYCTL_INVALIDATE, unlinks it from ring.
func destroy(kid, ring int) error {
	_, err := unix.KeyctlInt(unix.KEYCTL_INVALIDATE, kid, 0, 0, 0)
	if err == nil || notFound(err) {
		return nil
	}
	if _, err2 := unix.KeyctlInt(unix.KEYCTL_UNLINK, kid, ring, 0, 0); err2 == nil || notFound(err2) {
		return nil
	}
	return err
}

// parsePayload splits "exp=UNIX\n" + secret.
func parsePayload(p []byte) ([]byte, time.Time, error) {
	head, rest, ok := bytes.Cut(p, []byte{'\n'})
	if !ok || !bytes.HasPrefix(head, []byte("exp=")) {
		return nil, time.Time{}, ErrNotCached
	}
	sec, err := strconv.ParseInt(string(head[4:]), 10, 64)
	if err != nil {
		return nil, time.Time{}, ErrNotCached
	}
	return bytes.Clone(rest), time.Unix(sec, 0), nil
}
