package rig

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// Agent is a real oidc-agent (Debian oidc-agent-cli 4.2.6) running as a
// child of the test, with a private socket, HOME and OIDC_CONFIG_DIR.
type Agent struct {
	// Sock is its socket (OIDC_SOCK); Account the loaded account.
	Sock, Account string
	dir           string
	out           *syncBuffer
	pgid          int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartAgent starts oidc-agent and creates the account "tb" at the rig's
// test bed for alice (a confidential client with the refresh grant and a
// refresh token, given to oidc-gen through its environment), loaded and
// ready: OIDC_SOCK is added to the rig's environment.
func (r *Rig) StartAgent() *Agent {
	r.t.Helper()
	t := r.t
	agent := NeedTool(t, "oidc-agent", "oidc-agent-cli")
	NeedTool(t, "oidc-gen", "oidc-agent-cli")
	NeedTool(t, "oidc-token", "oidc-agent-cli")
	a := &Agent{dir: filepath.Join(r.Dir, "agent"), Account: "tb", out: &syncBuffer{}}
	a.Sock = filepath.Join(a.dir, "agent.sock")
	for _, d := range []string{a.dir, filepath.Join(a.dir, "home"), filepath.Join(a.dir, "conf")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	pw := RandomHex(t, 16)
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + filepath.Join(a.dir, "home"),
		"OIDC_CONFIG_DIR=" + filepath.Join(a.dir, "conf"), "TMPDIR=" + a.dir, "LANG=C",
	}
	// The agent lives until the test ends; its process group is killed
	// then.
	cmd := exec.CommandContext(context.Background(), agent, "-d", "--socket-path="+a.Sock)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = a.out, a.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a.pgid = cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // killed at cleanup: its status says nothing
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group: the agent forks its daemon
		<-exited
	})
	deadline := time.Now().Add(15 * time.Second)
	for !a.answers() {
		if time.Now().After(deadline) {
			t.Fatalf("oidc-agent did not come up:\n%s", a.out.String())
		}
		select {
		case <-exited:
			t.Fatalf("oidc-agent exited:\n%s", a.out.String())
		case <-time.After(20 * time.Millisecond): // readiness poll, bounded by the deadline
		}
	}

	spec, err := r.TB.RegisterClient(testbed.ClientSpec{Name: "oidc-agent tb", Grants: []string{"refresh"}})
	if err != nil {
		t.Fatal(err)
	}
	scopes := []string{"openid", "offline_access", "storage.read:/"}
	rt, err := r.TB.RefreshTokenFor("alice", spec.ID, scopes)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := json.Marshal(map[string]any{
		"name": a.Account, "issuer_url": r.TB.IssuerURL, "client_id": spec.ID, "client_secret": spec.Secret,
		"scope": strings.Join(scopes, " "), "redirect_uris": []string{},
	})
	file := filepath.Join(a.dir, "client.json")
	if err := os.WriteFile(file, client, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(file)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gen := exec.CommandContext(ctx, "oidc-gen", a.Account, "--file="+file, "--rt-env", "--pw-env",
		"--prompt=none", "--confirm-default", "--cp="+r.TB.CAFile)
	gen.Env = append(env, "OIDC_SOCK="+a.Sock, "OIDC_ENCRYPTION_PW="+pw, "OIDC_REFRESH_TOKEN="+rt)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("oidc-gen: %v\n%s", err, out)
	}
	r.env = append(r.env, "OIDC_SOCK="+a.Sock)
	return a
}

// answers reports whether the agent answers a loaded_accounts request.
func (a *Agent) answers() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", a.Sock)
	if err != nil {
		return false
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return false
	}
	if _, err := c.Write([]byte(`{"request":"loaded_accounts"}`)); err != nil {
		return false
	}
	var reply map[string]any
	return json.NewDecoder(c).Decode(&reply) == nil && reply["status"] == "success"
}

// Pids lists the agent's processes (oidc-agent forks its daemon into the
// same process group).
func (a *Agent) Pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so split
		// after its closing parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(a.pgid) {
			out = append(out, pid)
		}
	}
	return out
}
