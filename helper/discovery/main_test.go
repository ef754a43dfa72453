package discovery

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

// The test binary doubles as a helper process: with DISCOVERY_TEST_HELPER
// set it runs one role and exits instead of running tests.
const helperVar = "DISCOVERY_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperVar) {
	case "":
		os.Exit(m.Run())
	case "find":
		os.Exit(helperFind())
	case "hammer":
		os.Exit(helperHammer())
	default:
		fmt.Fprintln(os.Stderr, "unknown helper role")
		os.Exit(2)
	}
}

// helperFind runs Find in this process's real environment (TmpDir from
// DISCOVERY_TEST_TMPDIR) and prints the outcome, without the token.
func helperFind() int {
	env := OSEnv()
	env.TmpDir = os.Getenv("DISCOVERY_TEST_TMPDIR")
	res, err := Find(env)
	if err != nil {
		fmt.Printf("kind=%s msg=%s\n", helper.KindOf(err), err)
		return 0
	}
	fmt.Printf("found source=%s path=%s\n", res.Source, res.Path)
	return 0
}

// helperHammer writes its own tokens to the discovery location in
// DISCOVERY_TEST_DIR (as XDG_RUNTIME_DIR) and reads whatever is there,
// DISCOVERY_TEST_ITER times, once stdin reaches EOF (the start barrier).
// Every read must be a complete token some writer wrote.
func helperHammer() int {
	id, _ := strconv.Atoi(os.Getenv("DISCOVERY_TEST_ID"))
	iter, _ := strconv.Atoi(os.Getenv("DISCOVERY_TEST_ITER"))
	dir := os.Getenv("DISCOVERY_TEST_DIR")
	env := Env{
		LookupEnv: func(k string) (string, bool) {
			if k == VarXDGRuntimeDir {
				return dir, true
			}
			return "", false
		},
		UID:    os.Geteuid(),
		TmpDir: filepath.Join(dir, "no-tmp"),
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // wait for the parent to start everyone
	rng := rand.New(rand.NewPCG(uint64(id), 1))
	bad := 0
	for i := range iter {
		if _, err := Write(env, makeToken(rng, id, i), WriteOptions{}); err != nil {
			fmt.Fprintf(os.Stderr, "process %d: write %d: %v\n", id, i, err)
			bad++
		}
		res, err := Find(env)
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "process %d: read %d: %v\n", id, i, err)
			bad++
		case !validToken(res.Token):
			fmt.Fprintf(os.Stderr, "process %d: read %d: torn or foreign token of %d bytes\n", id, i, len(res.Token))
			bad++
		case len(res.Warnings) != 0:
			fmt.Fprintf(os.Stderr, "process %d: read %d: warnings %v\n", id, i, res.Warnings)
			bad++
		}
	}
	if bad > 0 {
		return 1
	}
	fmt.Printf("ok %d\n", iter)
	return 0
}

// makeToken returns a self-checking token of varying length:
// w<writer>.<i>.<padding>.<checksum of the rest>. A torn mix of two tokens
// fails the checksum.
func makeToken(rng *rand.Rand, writer, i int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	pad := make([]byte, rng.IntN(3000))
	for j := range pad {
		pad[j] = alphabet[rng.IntN(len(alphabet))]
	}
	body := fmt.Sprintf("w%d.%d.%s", writer, i, pad)
	sum := sha256.Sum256([]byte(body))
	return body + "." + hex.EncodeToString(sum[:8])
}

func validToken(tok string) bool {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || !helper.IsB64Token(tok) {
		return false
	}
	sum := sha256.Sum256([]byte(tok[:i]))
	return tok[i+1:] == hex.EncodeToString(sum[:8])
}

// helperBinary copies the test binary to a directory other users can
// traverse (go test keeps it in a 0700 directory) and returns its path.
func helperBinary(t *testing.T, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "discovery.test")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// runAsOther runs Find in a child process as uid/gid 65534 with vars as
// its environment, and returns what it printed.
func runAsOther(t *testing.T, s *sandbox, vars map[string]string) string {
	t.Helper()
	for _, d := range []string{filepath.Dir(s.root), s.root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(helperBinary(t, s.root))
	cmd.Dir = s.root
	cmd.Env = []string{helperVar + "=find", "DISCOVERY_TEST_TMPDIR=" + s.tmp}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID, NoSetGroups: true}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child as uid %d: %v\n%s", otherUID, err, stderr.Bytes())
	}
	return string(out)
}
