package native

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper/config"
)

var updateView = flag.Bool("update-view", false, "rewrite the device view golden files")

type viewUI struct {
	out      bytes.Buffer
	terminal bool
	now      func() time.Time
}

func (u *viewUI) Out() io.Writer                    { return &u.out }
func (u *viewUI) Terminal() bool                    { return u.terminal }
func (u *viewUI) Secret(string) (string, error)     { return "", errors.New("no prompts here") }
func (u *viewUI) Now() time.Time                    { return u.now() }
func (u *viewUI) String() string                    { return u.out.String() }
func (u *viewUI) Write(p []byte) (int, error)       { return u.out.Write(p) }
func (u *viewUI) WriteString(s string) (int, error) { return u.out.WriteString(s) }

// The device view with an injected clock: instructions, QR code of the
// complete URI, the countdown redrawn each second until the poll, a
// slow_down note, the approval; then a code that expires.
func TestDeviceViewGolden(t *testing.T) {
	for _, terminal := range []bool{true, false} {
		name := map[bool]string{true: "device_terminal.golden", false: "device_plain.golden"}[terminal]
		t.Run(name, func(t *testing.T) {
			now := time.Date(2026, 11, 5, 9, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			ui := &viewUI{terminal: terminal, now: clock}
			b, err := New(&config.Profile{Name: "wlcg", Issuer: "https://wlcg.cloud.cnaf.infn.it/"}, Options{
				Dirs: config.Dirs{StateDir: t.TempDir()},
				Now:  clock,
				Sleep: func(ctx context.Context, d time.Duration) error {
					now = now.Add(d)
					return nil
				},
				UI: ui,
			})
			if err != nil {
				t.Fatal(err)
			}
			a := &account{Issuer: "https://wlcg.cloud.cnaf.infn.it/"}
			v := &deviceView{w: ui.Out(), live: b.terminal()}
			start := now
			expires := start.Add(10 * time.Minute)
			b.showDeviceCode(v, a, "https://wlcg.cloud.cnaf.infn.it/device", "BCDF-GHJK",
				"https://wlcg.cloud.cnaf.infn.it/device?user_code=BCDF-GHJK", true, 10*time.Minute)
			if err := b.waitPoll(context.Background(), v, start.Add(5*time.Second), expires); err != nil {
				t.Fatal(err)
			}
			v.printf("The provider asks to poll less often: now every %s.\n", 10*time.Second)
			if err := b.waitPoll(context.Background(), v, now.Add(3*time.Second), expires); err != nil {
				t.Fatal(err)
			}
			v.printf("Approved.\n")

			// A code that expires while waiting: 2.5 s left, next poll in 5 s.
			ui.out.WriteString("--- expiry ---\n")
			err = b.waitPoll(context.Background(), v, now.Add(5*time.Second), now.Add(2500*time.Millisecond))
			if !errors.Is(err, errCodeExpired) {
				t.Fatalf("err %v, want errCodeExpired", err)
			}
			ui.out.WriteString("<end>\n")

			got := ui.String()
			path := filepath.Join("testdata", name)
			if *updateView {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestDeviceViewGolden -update-view writes it)", err)
			}
			if got != string(want) {
				t.Errorf("device view differs from %s:\n%q\nwant\n%q", path, got, want)
			}
		})
	}
}

func TestWriteQRRefusesWhatItCannotEncode(t *testing.T) {
	var buf bytes.Buffer
	if writeQR(&buf, string(bytes.Repeat([]byte("x"), maxQRText+1))) || buf.Len() != 0 {
		t.Error("an over-long text was rendered")
	}
	if !writeQR(&buf, "https://iam.example.org/device?user_code=BCDF-GHJK") || buf.Len() == 0 {
		t.Error("a verification URI was not rendered")
	}
}
