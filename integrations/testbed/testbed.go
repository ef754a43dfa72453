package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
)

// Testbed is a running loopback provider (and optionally storage).
type Testbed struct {
	// IssuerURL is the issuer, without trailing slash
	// (http://127.0.0.1:PORT or https://127.0.0.1:PORT).
	IssuerURL string
	// StorageURL is the storage's base URL, scheme://127.0.0.1:PORT/storage/
	// (the storage path /home/alice is StorageURL+"home/alice"); empty
	// unless Options.Storage. Its audience is StorageOrigin().
	StorageURL string
	// CAFile is the PEM file of the CA that signed the server certificate;
	// empty for http.
	CAFile string
	// Dir is the test bed's directory (CA, keys, admin token, testbed.json).
	Dir string
	// Clock drives token times and expiry; Advance it to expire tokens.
	Clock *Clock

	opts            Options
	https           bool
	defaultAudience string
	store           *store
	key             *signingKey
	signer          jose.Signer
	adminToken      string
	pki             *pki
	faults          faultTable
	counters        counterTable
	secrets         *secretRecorder

	servers   []*http.Server
	wg        sync.WaitGroup
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	removeDir bool
	wroteInfo bool

	mu         sync.Mutex
	transports []*http.Transport
	serveErrs  []error // servers that stopped before Close
}

// Start starts a test bed for a test and closes it when the test ends.
// Dir defaults to t.TempDir(). It fails the test when the test bed cannot
// start.
func Start(t testing.TB, opts Options) *Testbed {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	tb, err := New(opts)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(func() {
		if err := tb.Close(); err != nil {
			t.Errorf("testbed: %v", err)
		}
	})
	return tb
}

// New starts a test bed. Close it when done.
func New(opts Options) (_ *Testbed, err error) {
	tb := &Testbed{
		opts:            opts,
		https:           opts.HTTPS,
		Clock:           opts.Clock,
		defaultAudience: opts.DefaultAudience,
		closing:         make(chan struct{}),
	}
	if tb.Clock == nil {
		tb.Clock = RealClock()
	}
	if tb.defaultAudience == "" {
		tb.defaultAudience = AnyAudience
	}
	defer func() {
		if err != nil {
			tb.Close()
		}
	}()

	dir := opts.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "tokenhelper-testbed-")
		if err != nil {
			return nil, helper.Wrap(helper.KindInternal, err, "cannot create a temporary directory for the test bed")
		}
		tb.removeDir = true
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, helper.Wrap(helper.KindConfig, err, "bad test bed directory")
	}
	tb.Dir = dir
	if err := safefile.MkdirPrivate(dir); err != nil {
		return nil, (&helper.Error{Kind: helper.KindConfig, Msg: "cannot use " + dir + " as the test bed directory", Err: err}).WithFix("choose another --dir")
	}

	if err := checkNotInUse(dir); err != nil {
		return nil, err
	}

	if tb.secrets, err = newSecretRecorder(opts.RecordSecret); err != nil {
		return nil, helper.Wrap(helper.KindConfig, err, "cannot open $"+EnvRecordSecrets)
	}
	tb.store = newStore(tb.Clock, opts.Lifetimes)
	tb.store.secrets = tb.secrets
	users := opts.Users
	if users == nil {
		users = DemoUsers()
	}
	for _, u := range users {
		if err := tb.store.addUser(u); err != nil {
			return nil, err
		}
	}
	if !opts.NoDemoClient {
		if _, err := tb.store.addClient(ClientSpec{
			ID: DemoClientID, Name: "tokenhelper demo client", Public: true,
			Grants: []string{GrantDeviceCode, GrantRefreshToken},
		}, false, nil); err != nil {
			return nil, err
		}
	}
	for _, c := range opts.Clients {
		if _, err := tb.store.addClient(c, false, nil); err != nil {
			return nil, err
		}
	}

	if tb.key, err = loadOrCreateSigningKey(dir); err != nil {
		return nil, err
	}
	if tb.signer, err = newSigner(tb.key); err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot use the signing key")
	}
	if tb.adminToken, err = loadOrCreateAdminToken(dir); err != nil {
		return nil, err
	}

	ln, err := listen(opts.Addr)
	if err != nil {
		return nil, err
	}
	var storageLn net.Listener
	withStorage := opts.Storage || opts.StorageHandler != nil
	if withStorage {
		if storageLn, err = listen(opts.StorageAddr); err != nil {
			ln.Close()
			return nil, err
		}
	}
	scheme := "http"
	if tb.https {
		scheme = "https"
		hosts := []string{hostOf(ln)}
		if storageLn != nil {
			hosts = append(hosts, hostOf(storageLn))
		}
		if tb.pki, err = loadOrCreatePKI(dir, hosts); err != nil {
			closeAll(ln, storageLn)
			return nil, err
		}
		tb.CAFile = filepath.Join(dir, caFileName)
	}
	tb.IssuerURL = scheme + "://" + urlHost(ln)
	if storageLn != nil {
		tb.StorageURL = scheme + "://" + urlHost(storageLn) + storagePrefix + "/"
	}

	opHandler, err := tb.newOPHandler()
	if err != nil {
		closeAll(ln, storageLn)
		return nil, helper.Wrap(helper.KindInternal, err, "cannot set up the OpenID provider")
	}
	tb.serve(ln, tb.instrument(tb.providerMux(opHandler), func(r *http.Request) (Endpoint, bool) {
		if r.URL.Path == "/admin" || len(r.URL.Path) > len(pathAdmin) && r.URL.Path[:len(pathAdmin)] == pathAdmin {
			return "", false
		}
		return classify(r.URL.Path), true
	}))

	if withStorage {
		h, err := tb.storageHandler()
		if err != nil {
			storageLn.Close()
			return nil, err
		}
		tb.serve(storageLn, tb.instrument(h, func(*http.Request) (Endpoint, bool) { return EndpointStorage, true }))
	}
	if err := tb.writeInfo(); err != nil {
		return nil, err
	}
	return tb, nil
}

func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, (&helper.Error{Kind: helper.KindConfig, Msg: "cannot listen on " + addr, Err: err}).WithFix("choose another --addr (127.0.0.1:0 picks a free port)")
	}
	return ln, nil
}

func closeAll(ls ...net.Listener) {
	for _, l := range ls {
		if l != nil {
			l.Close()
		}
	}
}

func hostOf(ln net.Listener) string {
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	return host
}

// urlHost returns host:port for a URL: the unspecified address becomes
// 127.0.0.1, IPv6 gets brackets.
func urlHost(ln net.Listener) string {
	a := ln.Addr().(*net.TCPAddr)
	ip := a.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

// providerMux routes the provider's paths: op serves the OpenID/OAuth
// endpoints; the test bed adds the password grant, registration, the
// device page, the admin API and an index page.
func (tb *Testbed) providerMux(opHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathToken, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.ParseForm() == nil && r.PostForm.Get("grant_type") == GrantPassword {
			tb.passwordGrant(w, r)
			return
		}
		opHandler.ServeHTTP(w, r)
	})
	mux.HandleFunc(pathOAuthDiscovery, func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = pathDiscovery
		opHandler.ServeHTTP(w, r2)
	})
	mux.HandleFunc(pathRegistration, tb.handleRegistration)
	mux.HandleFunc(pathRegistration+"/", tb.handleRegistration)
	mux.HandleFunc(pathDevicePage, tb.handleDevicePage)
	mux.HandleFunc(pathAdmin, tb.handleAdmin)
	mux.HandleFunc("/{$}", tb.handleIndex)
	mux.Handle("/", opHandler)
	return mux
}

func (tb *Testbed) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	tb.servers = append(tb.servers, srv)
	tb.wg.Add(1)
	go func() {
		defer tb.wg.Done()
		var err error
		if tb.pki != nil {
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{tb.pki.server}, MinVersion: tls.VersionTLS12}
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			tb.mu.Lock()
			tb.serveErrs = append(tb.serveErrs, fmt.Errorf("the server on %s stopped: %w", ln.Addr(), err))
			tb.mu.Unlock()
		}
	}()
}

// storageHandler builds the storage's handler through
// Options.StorageHandler or the default storage package.
func (tb *Testbed) storageHandler() (http.Handler, error) {
	root := filepath.Join(tb.Dir, "storage")
	if err := safefile.MkdirPrivate(root); err != nil {
		return nil, helper.Wrap(helper.KindConfig, err, "cannot create the storage directory "+root)
	}
	env := StorageEnv{
		Issuer:     tb.IssuerURL,
		HTTPClient: tb.HTTPClient(),
		URL:        tb.StorageURL,
		Prefix:     storagePrefix,
		Audiences:  []string{tb.StorageOrigin(), AnyAudience},
		Root:       root,
		Now:        tb.Clock.Now,
	}
	build := tb.opts.StorageHandler
	if build == nil {
		build = defaultStorage
	}
	h, err := build(env)
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot start the storage: "+err.Error())
	}
	return h, nil
}

// Info is what testbed.json in Dir records about a running test bed.
type Info struct {
	Issuer         string `json:"issuer"`
	StorageURL     string `json:"storage_url,omitempty"`
	CAFile         string `json:"ca_file,omitempty"`
	AdminURL       string `json:"admin_url"`
	DevicePage     string `json:"device_page"`
	AdminTokenFile string `json:"admin_token_file"`
	PID            int    `json:"pid"`
}

// Info describes the test bed (the content of Dir/testbed.json).
func (tb *Testbed) Info() Info {
	return Info{
		Issuer:         tb.IssuerURL,
		StorageURL:     tb.StorageURL,
		CAFile:         tb.CAFile,
		AdminURL:       tb.IssuerURL + "/admin",
		DevicePage:     tb.IssuerURL + pathDevicePage,
		AdminTokenFile: filepath.Join(tb.Dir, adminTokenFileName),
		PID:            os.Getpid(),
	}
}

func (tb *Testbed) writeInfo() error {
	b, err := json.MarshalIndent(tb.Info(), "", "  ")
	if err != nil {
		return err
	}
	if err := safefile.WriteFile(filepath.Join(tb.Dir, InfoFileName), append(b, '\n'), 0o600); err != nil {
		return helper.Wrap(helper.KindInternal, err, "cannot write "+InfoFileName)
	}
	tb.wroteInfo = true
	return nil
}

// checkNotInUse refuses a directory another running test bed uses (its
// testbed.json names a live process): both would write the same files.
func checkNotInUse(dir string) error {
	info, running := runningInfo(dir)
	if !running {
		return nil
	}
	return (&helper.Error{Kind: helper.KindConfig, Msg: fmt.Sprintf("a test bed (pid %d, %s) already runs with the directory %s", info.PID, info.Issuer, dir)}).
		WithFix("stop it, or pass another --dir")
}

// runningInfo reads dir's testbed.json and reports whether the process
// it names is alive. No file, an unreadable one and the stale file of a
// test bed that was killed all mean none is running: the new one
// replaces the file.
func runningInfo(dir string) (Info, bool) {
	info, err := ReadInfo(dir)
	if err != nil || info.PID <= 0 {
		return Info{}, false
	}
	p, err := os.FindProcess(info.PID)
	if err != nil || p.Signal(syscall.Signal(0)) != nil {
		return Info{}, false
	}
	return info, true
}

// ReadInfo reads testbed.json from a test bed directory.
func ReadInfo(dir string) (Info, error) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dir, InfoFileName))
	if err != nil {
		return info, (&helper.Error{Kind: helper.KindConfig, Msg: "no running test bed found in " + dir, Err: err}).
			WithFix("start one with: tokenhelper-testbed serve --dir %s", dir)
	}
	if err := json.Unmarshal(b, &info); err != nil || info.Issuer == "" {
		return info, (&helper.Error{Kind: helper.KindConfig, Msg: filepath.Join(dir, InfoFileName) + " is unreadable"}).
			WithFix("restart the test bed")
	}
	return info, nil
}

// Close stops the servers, releases requests held by faults and waiters,
// and removes Dir when New created it. It is safe to call more than once.
func (tb *Testbed) Close() error {
	tb.closeOnce.Do(func() {
		close(tb.closing)
		// Our own clients first: an idle HTTP/2 connection would otherwise
		// hold Shutdown until its GOAWAY is acknowledged.
		tb.mu.Lock()
		for _, tr := range tb.transports {
			tr.CloseIdleConnections()
		}
		tb.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range tb.servers {
			if err := s.Shutdown(ctx); err != nil {
				s.Close()
			}
		}
		tb.wg.Wait()
		tb.mu.Lock()
		tb.closeErr = errors.Join(append(tb.serveErrs, tb.secrets.close())...)
		tb.mu.Unlock()
		if tb.removeDir && tb.Dir != "" {
			os.RemoveAll(tb.Dir)
		} else if tb.wroteInfo {
			os.Remove(filepath.Join(tb.Dir, InfoFileName))
		}
	})
	return tb.closeErr
}

// HTTPClient returns a client that trusts the test bed's CA, bypasses
// proxies and has a 30 s timeout. Its idle connections are closed by
// Close.
func (tb *Testbed) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if tb.pki != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: tb.pki.caPool, MinVersion: tls.VersionTLS12}
	}
	tb.mu.Lock()
	tb.transports = append(tb.transports, tr)
	tb.mu.Unlock()
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// StorageOrigin is the storage's audience in the WLCG recommended form
// (scheme://127.0.0.1:PORT, no trailing slash); empty without storage.
func (tb *Testbed) StorageOrigin() string {
	if tb.StorageURL == "" {
		return ""
	}
	return strings.TrimSuffix(tb.StorageURL, storagePrefix+"/")
}

// RootCAs returns a pool with the test bed's CA (nil for http).
func (tb *Testbed) RootCAs() *x509.CertPool {
	if tb.pki == nil {
		return nil
	}
	return tb.pki.caPool.Clone()
}

// Endpoint URLs.
func (tb *Testbed) TokenURL() string               { return tb.IssuerURL + pathToken }
func (tb *Testbed) DeviceAuthorizationURL() string { return tb.IssuerURL + pathDeviceAuthorization }
func (tb *Testbed) RegistrationURL() string        { return tb.IssuerURL + pathRegistration }
func (tb *Testbed) RevocationURL() string          { return tb.IssuerURL + pathRevocation }
func (tb *Testbed) IntrospectionURL() string       { return tb.IssuerURL + pathIntrospection }
func (tb *Testbed) UserinfoURL() string            { return tb.IssuerURL + pathUserinfo }
func (tb *Testbed) JWKSURL() string                { return tb.IssuerURL + pathJWKS }
func (tb *Testbed) DevicePageURL() string          { return tb.IssuerURL + pathDevicePage }
func (tb *Testbed) DiscoveryURL() string           { return tb.IssuerURL + pathDiscovery }

// AdminURL is the base of the admin API (see handleAdmin's doc).
func (tb *Testbed) AdminURL() string { return tb.IssuerURL + "/admin" }

// AdminToken is the bearer token of the admin API.
func (tb *Testbed) AdminToken() string { return tb.adminToken }

// OAuth2Endpoint returns the endpoints for golang.org/x/oauth2, with
// AuthStyleInHeader (auto-detection doubles requests and can replay a
// rotated refresh token).
func (tb *Testbed) OAuth2Endpoint() oauth2.Endpoint {
	return oauth2.Endpoint{
		AuthURL:       tb.IssuerURL + pathAuthorization,
		DeviceAuthURL: tb.DeviceAuthorizationURL(),
		TokenURL:      tb.TokenURL(),
		AuthStyle:     oauth2.AuthStyleInHeader,
	}
}

// AddUser adds an account.
func (tb *Testbed) AddUser(u User) error { return tb.store.addUser(u) }

// RegisterClient registers a client as an administrator would (the only
// way to get the password grant). Empty ID and Secret are generated; the
// completed spec is returned.
func (tb *Testbed) RegisterClient(spec ClientSpec) (ClientSpec, error) {
	c, err := tb.store.addClient(spec, false, nil)
	if err != nil {
		return ClientSpec{}, err
	}
	return cloneSpec(c.spec), nil
}

// Client returns a registered client's spec (including dynamically
// registered ones).
func (tb *Testbed) Client(id string) (ClientSpec, bool) {
	c, ok := tb.store.client(id)
	if !ok {
		return ClientSpec{}, false
	}
	return cloneSpec(c.spec), true
}

func cloneSpec(s ClientSpec) ClientSpec {
	s.Grants = slices.Clone(s.Grants)
	s.Scopes = slices.Clone(s.Scopes)
	s.RedirectURIs = slices.Clone(s.RedirectURIs)
	return s
}

// ApproveDevice approves the pending device request with userCode on
// behalf of user (no password needed).
func (tb *Testbed) ApproveDevice(userCode, user string) error {
	return tb.store.approve(userCode, user)
}

// DenyDevice denies the pending device request with userCode.
func (tb *Testbed) DenyDevice(userCode string) error { return tb.store.deny(userCode) }

// PendingDevices lists the device requests waiting for a decision, oldest
// first.
func (tb *Testbed) PendingDevices() []DeviceRequest { return tb.store.pending() }

// WaitForDeviceRequest blocks until a device request is pending and
// returns the oldest one. It returns an error when ctx ends or the test
// bed closes.
func (tb *Testbed) WaitForDeviceRequest(ctx context.Context) (DeviceRequest, error) {
	r, err := tb.store.waitPending(ctx.Done(), tb.closing)
	if err != nil && ctx.Err() != nil {
		return r, fmt.Errorf("%w: %w", err, ctx.Err())
	}
	return r, err
}

// ApproveNext waits for the oldest pending device request and approves it
// for user. Safe to call from another goroutine than the client's.
func (tb *Testbed) ApproveNext(ctx context.Context, user string) (DeviceRequest, error) {
	if _, ok := tb.store.user(user); !ok {
		return DeviceRequest{}, &helper.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("no test bed user %q", user), Err: ErrUnknownUser}
	}
	for {
		r, err := tb.WaitForDeviceRequest(ctx)
		if err != nil {
			return r, err
		}
		err = tb.store.approve(r.UserCode, user)
		if errors.Is(err, ErrNotPending) {
			continue // decided or expired meanwhile: wait for the next one
		}
		return r, err
	}
}

// DenyNext waits for the oldest pending device request and denies it.
func (tb *Testbed) DenyNext(ctx context.Context) (DeviceRequest, error) {
	for {
		r, err := tb.WaitForDeviceRequest(ctx)
		if err != nil {
			return r, err
		}
		err = tb.store.deny(r.UserCode)
		if errors.Is(err, ErrNotPending) {
			continue
		}
		return r, err
	}
}

// IssueToken mints an access token for a configured user directly, as the
// provider would after a grant (scopes are not filtered by policy). An
// empty audiences list gives the default audience; lifetime 0 gives the
// access-token lifetime, a negative one an expired token.
func (tb *Testbed) IssueToken(user string, scopes, audiences []string, lifetime time.Duration) (string, error) {
	return tb.Mint(TokenSpec{User: user, Scopes: scopes, Audiences: audiences, Lifetime: lifetime})
}

// Mint mints an access token from a TokenSpec (see its fields for the
// overrides that make invalid tokens).
func (tb *Testbed) Mint(spec TokenSpec) (string, error) {
	at, err := tb.mint(spec)
	return at.raw, err
}

// RefreshTokenFor creates a refresh token as if user had approved a device
// request of clientID for scopes (filtered by the user's and the client's
// policy, like a real grant; offline_access is implied). It lets a test
// start from "logged in" without a device flow.
func (tb *Testbed) RefreshTokenFor(user, clientID string, scopes []string) (string, error) {
	u, ok := tb.store.user(user)
	if !ok {
		return "", &helper.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("no test bed user %q", user), Err: ErrUnknownUser}
	}
	c, ok := tb.store.client(clientID)
	if !ok {
		return "", &helper.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("no test bed client %q", clientID), Err: ErrUnknownClient}
	}
	if !c.hasGrant(GrantRefreshToken) {
		return "", helper.Errorf(helper.KindUsage, "client %q does not have the refresh_token grant", clientID)
	}
	if !slices.Contains(scopes, "offline_access") {
		scopes = append(slices.Clone(scopes), "offline_access")
	}
	granted := filterScopes(scopes, u, c.spec.Scopes)
	return tb.store.newRefresh(refreshGrant{
		clientID: clientID, user: u.Name, subject: u.Subject, scopes: granted, authTime: tb.Clock.Now(),
	}), nil
}

// Inject arms a fault on an endpoint. Faults on one endpoint apply in the
// order they were injected; a fault with a Count is used up after Count
// matching requests, one without stays until ClearFaults.
func (tb *Testbed) Inject(e Endpoint, f Fault) error {
	if !slices.Contains(Endpoints, e) {
		return helper.Errorf(helper.KindUsage, "unknown endpoint %q", string(e)).WithFix("use one of %v", Endpoints)
	}
	f, err := f.validate()
	if err != nil {
		return &helper.Error{Kind: helper.KindUsage, Msg: "bad fault: " + err.Error(), Err: err}
	}
	tb.faults.add(e, f)
	return nil
}

// ClearFaults disarms the faults of the given endpoints (all endpoints
// when none is given).
func (tb *Testbed) ClearFaults(es ...Endpoint) { tb.faults.clear(es...) }

// Counters returns a snapshot of the request counters.
func (tb *Testbed) Counters() Counters { return tb.counters.snapshot() }

// WaitCounters blocks until cond holds for the counters (for example
// "two device polls reached the provider", or "a request is held by a
// fault"). It fails when ctx ends or the test bed closes.
func (tb *Testbed) WaitCounters(ctx context.Context, cond func(Counters) bool) error {
	if tb.counters.wait(ctx.Done(), tb.closing, cond) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("the test bed was closed")
}

// ResetCounters sets all counters to zero.
func (tb *Testbed) ResetCounters() { tb.counters.reset() }

// Lifetimes returns the current lifetimes (defaults filled in).
func (tb *Testbed) Lifetimes() Lifetimes { return tb.store.getLifetimes() }

// SetLifetimes changes lifetimes for what is issued from now on.
func (tb *Testbed) SetLifetimes(l Lifetimes) { tb.store.setLifetimes(l) }
