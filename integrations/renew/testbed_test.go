package renew

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// refreshSource is a small backend for tests: a refresh-token grant at the
// test bed through golang.org/x/oauth2 (rotated refresh tokens kept), as
// the native backend does, so every call that reaches the provider brings
// a fresh access token and a provider outage is a real HTTP failure.
type refreshSource struct {
	cfg    oauth2.Config
	client *http.Client

	mu sync.Mutex
	rt string
}

func newRefreshSource(t *testing.T, tb *testbed.Testbed, scopes []string) *refreshSource {
	t.Helper()
	rt, err := tb.RefreshTokenFor("alice", testbed.DemoClientID, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return &refreshSource{
		cfg:    oauth2.Config{ClientID: testbed.DemoClientID, Endpoint: tb.OAuth2Endpoint(), Scopes: scopes},
		client: tb.HTTPClient(),
		rt:     rt,
	}
}

func (s *refreshSource) source(ctx context.Context, minValid time.Duration) (*helper.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	tok, err := s.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: s.rt}).Token()
	if err != nil {
		return nil, helper.Wrap(helper.KindUnavailable, err, "the provider did not refresh the token")
	}
	if tok.RefreshToken != "" {
		s.rt = tok.RefreshToken
	}
	info, err := jwtinfo.Parse(tok.AccessToken)
	if err != nil {
		return nil, err
	}
	return &helper.Token{AccessToken: tok.AccessToken, Expiry: info.Expiry}, nil
}

// storageStatus asks the test bed storage for a file with the token.
func storageStatus(t *testing.T, tb *testbed.Testbed, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, tb.StorageURL+"data/none", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := tb.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTestbedDaemon runs the renewer against the loopback provider with
// 4-second access tokens: the file holds a token the storage accepts across
// several lifetimes; while the token endpoint fails (503) for longer than a
// lifetime the file is kept, and the renewer recovers when the provider
// does.
func TestTestbedDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test (about 20 s)")
	}
	life := 4 * time.Second
	tb := testbed.Start(t, testbed.Options{Storage: true, Lifetimes: testbed.Lifetimes{Access: life}})
	src := newRefreshSource(t, tb, []string{"openid", "storage.read:/"})
	path := filepath.Join(t.TempDir(), "bt")
	var logs logRec
	r := logs.renewer(&Renewer{
		Env: testEnv(t), MinRetry: 200 * time.Millisecond, MaxRetry: time.Second, MaxSleep: 500 * time.Millisecond,
	})
	runRenewer(t, r, []Output{{Name: "alice", Path: path, Source: src.source}})

	// readValid polls until the file holds a token valid now.
	readValid := func(deadline time.Duration) string {
		t.Helper()
		end := time.Now().Add(deadline)
		for {
			if b, err := os.ReadFile(path); err == nil {
				tok := strings.TrimSpace(string(b))
				if info, err := jwtinfo.Parse(tok); err == nil && info.Expiry.After(time.Now()) {
					return tok
				}
			}
			if time.Now().After(end) {
				t.Fatalf("no valid token in %s within %s; log: %q", path, deadline, logs.all())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Three lifetimes: every look finds a token valid at the storage.
	seen := map[string]bool{}
	for end := time.Now().Add(3 * life); time.Now().Before(end); {
		tok := readValid(2 * time.Second)
		if !seen[tok] {
			seen[tok] = true
			if code := storageStatus(t, tb, tok); code != http.StatusNotFound {
				t.Fatalf("the storage answered %d to the file's token, want 404 (authorized, no such file)", code)
			}
		}
		left := time.Until(mustExpiry(t, tok))
		if left < 0 {
			t.Fatalf("expired token in the file")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(seen) < 3 {
		t.Fatalf("%d distinct tokens over 3 lifetimes, want ≥ 3", len(seen))
	}

	// The provider goes down for two lifetimes.
	if err := tb.Inject(testbed.EndpointToken, testbed.Status(http.StatusServiceUnavailable)); err != nil {
		t.Fatal(err)
	}
	before := tb.Counters().Faults[testbed.EndpointToken]
	ctx, cancel := context.WithTimeout(context.Background(), 4*life)
	defer cancel()
	if err := tb.WaitCounters(ctx, func(c testbed.Counters) bool {
		return c.Faults[testbed.EndpointToken] >= before+4
	}); err != nil {
		t.Fatalf("the renewer did not retry while the provider was down: %v", err)
	}
	last, err := os.ReadFile(path)
	if err != nil {
		t.Fatal("the file was removed while the provider was down")
	}
	// Wait until the old token has expired: the file still holds it.
	time.Sleep(time.Until(mustExpiry(t, strings.TrimSpace(string(last)))) + 100*time.Millisecond)
	// One more failed attempt after the expiry.
	n := tb.Counters().Faults[testbed.EndpointToken]
	if err := tb.WaitCounters(ctx, func(c testbed.Counters) bool { return c.Faults[testbed.EndpointToken] > n }); err != nil {
		t.Fatalf("no retry after the token expired: %v", err)
	}
	if now, err := os.ReadFile(path); err != nil || string(now) != string(last) {
		t.Fatalf("the file changed or vanished while the provider was down: %v", err)
	}
	tb.ClearFaults(testbed.EndpointToken)

	tok := readValid(5 * time.Second)
	if code := storageStatus(t, tb, tok); code != http.StatusNotFound {
		t.Fatalf("after recovery the storage answered %d", code)
	}
	var failures, expired, recovered int
	for _, w := range logs.warnings() {
		switch {
		case strings.HasPrefix(w, "cannot renew"):
			failures++
		case strings.Contains(w, "expired at"):
			expired++
		case strings.Contains(w, "failed attempts"):
			recovered++
		}
		if strings.Contains(w, tok) || strings.Contains(w, string(last)) {
			t.Fatal("token material in a log line")
		}
	}
	if failures != 1 || expired != 1 || recovered != 1 {
		t.Fatalf("log lines: %d failures, %d expiries, %d recoveries, want 1 each: %q", failures, expired, recovered, logs.warnings())
	}
}

func mustExpiry(t *testing.T, tok string) time.Time {
	t.Helper()
	info, err := jwtinfo.Parse(tok)
	if err != nil || info.Expiry.IsZero() {
		t.Fatalf("no expiry: %v", errors.Join(err))
	}
	return info.Expiry
}
