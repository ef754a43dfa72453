package testbed_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// refresher returns a function that refreshes alice's grant with x/oauth2
// (AuthStyleInHeader) and keeps the rotated refresh token.
func refresher(t *testing.T, tb *testbed.Testbed) func(ctx context.Context) (*oauth2.Token, error) {
	client := confidential(t, tb, testbed.ClientSpec{})
	rt, err := tb.RefreshTokenFor("alice", client.ID, []string{"openid", "storage.read:/"})
	if err != nil {
		t.Fatal(err)
	}
	conf := oauthConfig(tb, client)
	return func(ctx context.Context) (*oauth2.Token, error) {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, tb.HTTPClient())
		tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)}).Token()
		if err == nil {
			rt = tok.RefreshToken
		}
		return tok, err
	}
}

func TestFaultsObservedByClients(t *testing.T) {
	t.Parallel()
	t.Run("oauth errors", func(t *testing.T) {
		t.Parallel()
		tb := testbed.Start(t, testbed.Options{})
		refresh := refresher(t, tb)
		for _, code := range []string{"slow_down", "access_denied", "expired_token", "invalid_grant", "temporarily_unavailable"} {
			if err := tb.Inject(testbed.EndpointToken, testbed.OAuthError(code).Once()); err != nil {
				t.Fatal(err)
			}
			_, err := refresh(ctxT(t, 10*time.Second))
			if oauthErr(err) != code {
				t.Errorf("injected %s: client saw %v", code, err)
			}
		}
		if _, err := refresh(ctxT(t, 10*time.Second)); err != nil {
			t.Errorf("after one-shot faults: %v", err)
		}
		c := tb.Counters()
		if c.Grant("refresh") != 6 || c.Faults[testbed.EndpointToken] != 5 {
			t.Errorf("counters %+v", c)
		}
	})
	t.Run("status and html", func(t *testing.T) {
		t.Parallel()
		tb := testbed.Start(t, testbed.Options{})
		refresh := refresher(t, tb)
		if err := tb.Inject(testbed.EndpointToken, testbed.Status(503).Once()); err != nil {
			t.Fatal(err)
		}
		_, err := refresh(ctxT(t, 10*time.Second))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != 503 || re.ErrorCode != "" {
			t.Errorf("503: %v", err)
		}
		if err := tb.Inject(testbed.EndpointToken, testbed.HTMLError().Once()); err != nil {
			t.Fatal(err)
		}
		_, err = refresh(ctxT(t, 10*time.Second))
		if !errors.As(err, &re) || re.Response.StatusCode != 502 || !strings.Contains(string(re.Body), "<html>") ||
			!strings.HasPrefix(re.Response.Header.Get("Content-Type"), "text/html") {
			t.Errorf("HTML error: %v", err)
		}
		// The faulted requests never reached the grant: the refresh token
		// still works.
		if _, err := refresh(ctxT(t, 10*time.Second)); err != nil {
			t.Errorf("after faults: %v", err)
		}
		resp, err := tb.HTTPClient().Get(tb.DiscoveryURL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("discovery got the token endpoint's fault: %s", resp.Status)
		}
	})
	t.Run("malformed json", func(t *testing.T) {
		t.Parallel()
		tb := testbed.Start(t, testbed.Options{})
		refresh := refresher(t, tb)
		if err := tb.Inject(testbed.EndpointToken, testbed.MalformedJSON().Once()); err != nil {
			t.Fatal(err)
		}
		_, err := refresh(ctxT(t, 10*time.Second))
		if err == nil || oauthErr(err) != "" {
			t.Errorf("malformed JSON: %v", err)
		}
		var d map[string]any
		if err := tb.Inject(testbed.EndpointDiscovery, testbed.MalformedJSON()); err != nil {
			t.Fatal(err)
		}
		resp, err := tb.HTTPClient().Get(tb.DiscoveryURL())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&d); err == nil || resp.StatusCode != 200 {
			t.Errorf("discovery decoded despite the fault: %d %v", resp.StatusCode, err)
		}
	})
	t.Run("oversized", func(t *testing.T) {
		t.Parallel()
		tb := testbed.Start(t, testbed.Options{})
		if err := tb.Inject(testbed.EndpointJWKS, testbed.Oversized(4<<20).Once()); err != nil {
			t.Fatal(err)
		}
		resp, err := tb.HTTPClient().Get(tb.JWKSURL())
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, 8<<20))
		resp.Body.Close()
		if n != 4<<20 {
			t.Errorf("body of %d bytes, want %d", n, 4<<20)
		}
		// A client that stops reading early does not hold the server.
		if err := tb.Inject(testbed.EndpointJWKS, testbed.Oversized(0).Once()); err != nil {
			t.Fatal(err)
		}
		resp, err = tb.HTTPClient().Get(tb.JWKSURL())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	})
	t.Run("delay past the client deadline", func(t *testing.T) {
		t.Parallel()
		tb := testbed.Start(t, testbed.Options{})
		refresh := refresher(t, tb)
		if err := tb.Inject(testbed.EndpointToken, testbed.Hang().Once()); err != nil {
			t.Fatal(err)
		}
		ctx, giveUp := context.WithCancel(context.Background())
		defer giveUp()
		result := make(chan error, 1)
		go func() { _, err := refresh(ctx); result <- err }()
		// Once the request is held, the client gives up (as at its
		// deadline).
		if err := tb.WaitCounters(ctxT(t, 10*time.Second), func(c testbed.Counters) bool { return c.Faults[testbed.EndpointToken] == 1 }); err != nil {
			t.Fatal(err)
		}
		giveUp()
		if err := <-result; !errors.Is(err, context.Canceled) {
			t.Errorf("hang: %v, want the client's cancellation", err)
		}
		// The held request was cancelled, not handled: the refresh token
		// was not rotated behind the client's back.
		if _, err := refresh(ctxT(t, 10*time.Second)); err != nil {
			t.Errorf("after a cancelled request: %v", err)
		}
		if err := tb.Inject(testbed.EndpointDiscovery, testbed.Delay(200*time.Millisecond).Once()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var d map[string]any
		getJSON(t, tb, tb.DiscoveryURL(), &d)
		if time.Since(start) < 200*time.Millisecond || d["issuer"] != tb.IssuerURL {
			t.Errorf("delayed discovery: %v after %v", d["issuer"], time.Since(start))
		}
	})
	t.Run("device authorization and registration", func(t *testing.T) {
		t.Parallel()
		tb := testbed.Start(t, testbed.Options{})
		conf := oauthConfig(tb, testbed.ClientSpec{ID: testbed.DemoClientID})
		if err := tb.Inject(testbed.EndpointDeviceAuthorization, testbed.OAuthError("access_denied").Once()); err != nil {
			t.Fatal(err)
		}
		if _, err := conf.DeviceAuth(oauthCtx(t, tb)); oauthErr(err) != "access_denied" {
			t.Errorf("device authorization: %v", err)
		}
		if _, err := conf.DeviceAuth(oauthCtx(t, tb)); err != nil {
			t.Errorf("after the one-shot fault: %v", err)
		}
		if err := tb.Inject(testbed.EndpointRegistration, testbed.Status(500)); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			resp, err := tb.HTTPClient().Post(tb.RegistrationURL(), "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 500 {
				t.Errorf("registration with a standing fault: %s", resp.Status)
			}
		}
		tb.ClearFaults(testbed.EndpointRegistration)
		resp, err := tb.HTTPClient().Post(tb.RegistrationURL(), "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Errorf("registration after ClearFaults: %s", resp.Status)
		}
	})
}

func TestFaultCountsAndGrantFilter(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	refresh := refresher(t, tb)
	if err := tb.Inject(testbed.EndpointToken, testbed.Status(502).Times(2).ForGrant("refresh")); err != nil {
		t.Fatal(err)
	}
	if err := tb.Inject(testbed.EndpointToken, testbed.OAuthError("invalid_client").ForGrant("client_credentials")); err != nil {
		t.Fatal(err)
	}
	for i, wantErr := range []bool{true, true, false} {
		_, err := refresh(ctxT(t, 10*time.Second))
		if (err != nil) != wantErr {
			t.Errorf("refresh %d: %v", i, err)
		}
	}
	robot := confidential(t, tb, testbed.ClientSpec{Grants: []string{"client_credentials"}})
	code, out := post(t, tb, tb.TokenURL(), robot.ID, robot.Secret, url.Values{"grant_type": {"client_credentials"}})
	if code != 401 || out["error"] != "invalid_client" {
		t.Errorf("client credentials with a standing fault: %d %v", code, out)
	}
	for _, bad := range []testbed.Fault{{Kind: "nonsense"}, testbed.OAuthError(""), testbed.Status(999), testbed.Status(500).ForGrant("magic")} {
		if err := tb.Inject(testbed.EndpointToken, bad); err == nil {
			t.Errorf("Inject(%+v) accepted", bad)
		}
	}
	if err := tb.Inject("nowhere", testbed.Status(500)); err == nil {
		t.Error("Inject on an unknown endpoint accepted")
	}
}

func TestCountersConcurrent(t *testing.T) {
	t.Parallel()
	tb := testbed.Start(t, testbed.Options{})
	client := tb.HTTPClient()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				resp, err := client.Get(tb.DiscoveryURL())
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				resp, err = client.Post(tb.TokenURL(), "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token&refresh_token=x"))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	c := tb.Counters()
	if c.Endpoint(testbed.EndpointDiscovery) != 50 || c.Endpoint(testbed.EndpointToken) != 50 || c.Grant("refresh_token") != 50 {
		t.Errorf("counters %+v", c)
	}
	tb.ResetCounters()
	if c := tb.Counters(); c.Endpoint(testbed.EndpointDiscovery) != 0 {
		t.Errorf("after reset: %+v", c)
	}
}

// TestCloseReleasesEverything holds requests with faults and waiters, then
// checks that Close returns them and leaves no goroutine of the test bed
// or its servers behind. Not parallel: it counts goroutines.
func TestCloseReleasesEverything(t *testing.T) {
	before := serverGoroutines()
	tb, err := testbed.New(testbed.Options{HTTPS: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Inject(testbed.EndpointToken, testbed.Hang()); err != nil {
		t.Fatal(err)
	}
	if err := tb.Inject(testbed.EndpointJWKS, testbed.Oversized(1<<30)); err != nil {
		t.Fatal(err)
	}
	client := tb.HTTPClient()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		resp, err := client.Post(tb.TokenURL(), "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token&refresh_token=x"))
		if err == nil {
			resp.Body.Close()
		}
	}()
	go func() {
		defer wg.Done()
		resp, err := client.Get(tb.JWKSURL())
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	go func() {
		defer wg.Done()
		// Nothing will come: Close must end the wait.
		if _, err := tb.DenyNext(context.Background()); err == nil {
			t.Error("DenyNext returned without a request")
		}
	}()
	// Wait until both requests are held by their faults.
	err = tb.WaitCounters(ctxT(t, 10*time.Second), func(c testbed.Counters) bool {
		return c.Faults[testbed.EndpointToken] > 0 && c.Faults[testbed.EndpointJWKS] > 0
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { tb.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
	wg.Wait()
	client.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := serverGoroutines()
		if after <= before {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d test bed or server goroutines left after Close (before: %d):\n%s", after, before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

// serverGoroutines counts goroutines running test bed code or HTTP
// server/client connections.
func serverGoroutines() int {
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	count := 0
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "integrations/testbed.") || strings.Contains(g, "net/http.(*conn).serve") ||
			strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "net/http.(*Server).Serve") {
			count++
		}
	}
	return count
}
