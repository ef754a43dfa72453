// Package dockercred implements the docker credential helper protocol of
// docker/docker-credential-helpers (the `credsStore` / `credHelpers`
// programs docker-credential-NAME), for tokenhelper.
//
// docker runs docker-credential-NAME ACTION:
//
//   - get: stdin is a registry's server URL ("https://index.docker.io/v1/",
//     "registry.example.org", "registry.example.org:5000"); stdout is
//     {"ServerURL":…,"Username":…,"Secret":…}. A registry the helper has no
//     credentials for is answered with exactly the text
//     "credentials not found in native keychain" on stdout and exit
//     status 1, which docker recognises.
//   - store: stdin is {"ServerURL","Username","Secret"}: tokenhelper's
//     tokens live in its own cache, so this is read and ignored.
//   - erase: stdin is a server URL: the Source drops its cached token.
//   - list: stdout is a JSON object server URL → user name.
//
// Other errors are one line on stdout and exit status 1, as
// docker-credential-helpers' Serve does (docker shows stdout, not stderr).
//
// Handle reads and writes only the io.Reader and io.Writer it is given;
// the CLI maps its errors to the protocol's output with WriteError.
package dockercred

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tokenhelper/tokenhelper/helper"
)

// NotFoundMessage is the protocol's fixed text for "no credentials for
// this server"; docker matches it exactly.
const NotFoundMessage = "credentials not found in native keychain"

// MaxInput bounds what a helper action reads from stdin.
const MaxInput = 64 << 10

// ErrNotFound is returned by Handle for a server nothing serves.
var ErrNotFound = errors.New(NotFoundMessage)

// IsNotFound reports whether err means "no credentials for this server".
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// The actions.
const (
	ActionGet   = "get"
	ActionStore = "store"
	ActionErase = "erase"
	ActionList  = "list"
)

// Credentials is the protocol's credential object.
type Credentials struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// Source finds tokens for registries.
type Source interface {
	// Get returns the user name and token for the registry at serverURL
	// (the text docker sent, trimmed), or (nil, nil) when nothing serves
	// it. Handle fills in ServerURL.
	Get(ctx context.Context, serverURL string) (*Credentials, error)
	// Erase drops any cached token for serverURL (docker logout).
	Erase(ctx context.Context, serverURL string) error
	// List returns server URL → user name for every registry served.
	List(ctx context.Context) (map[string]string, error)
}

// Handle runs one action. On error nothing has been written to out; the
// caller reports the error with WriteError.
func Handle(ctx context.Context, src Source, action string, in io.Reader, out io.Writer) error {
	switch action {
	case ActionGet:
		server, err := ParseServerURL(in)
		if err != nil {
			return err
		}
		c, err := src.Get(ctx, server)
		if err != nil {
			return err
		}
		if c == nil || c.Secret == "" {
			return ErrNotFound
		}
		c.ServerURL = server
		return writeJSON(out, c)
	case ActionStore:
		if _, err := ParseStore(in); err != nil {
			return err
		}
		return nil
	case ActionErase:
		server, err := ParseServerURL(in)
		if err != nil {
			return err
		}
		return src.Erase(ctx, server)
	case ActionList:
		m, err := src.List(ctx)
		if err != nil {
			return err
		}
		if m == nil {
			m = map[string]string{}
		}
		return writeJSON(out, m)
	}
	return &helper.Error{Kind: helper.KindUsage, Msg: "unknown docker credential helper action " + quoteAction(action),
		Fix: "use get, store, erase or list"}
}

// WriteError writes err as the protocol wants it on stdout: exactly
// NotFoundMessage for ErrNotFound, else one line. A failed write is not
// reported: there is nowhere left to report it, and the exit status
// already says the action failed.
func WriteError(out io.Writer, err error) {
	if IsNotFound(err) {
		_, _ = io.WriteString(out, NotFoundMessage+"\n")
		return
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	_, _ = io.WriteString(out, "tokenhelper: "+msg+"\n")
}

func writeJSON(out io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return helper.Wrap(helper.KindInternal, err, "cannot encode the docker credential answer")
	}
	_, err = out.Write(append(b, '\n'))
	return err
}

func inputError(msg string) *helper.Error {
	return &helper.Error{Kind: helper.KindUsage, Msg: "docker credential input: " + msg,
		Fix: "docker sends the registry's server URL on stdin (see docker-credential-helpers)"}
}

func readInput(in io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(in, MaxInput+1))
	if err != nil {
		return nil, helper.Wrap(helper.KindInternal, err, "cannot read the docker credential input")
	}
	if len(b) > MaxInput {
		return nil, inputError("larger than 64 KiB")
	}
	return b, nil
}

// ParseServerURL reads the server URL docker sends to get and erase: one
// line, surrounding white space trimmed. It fails with KindUsage (never
// repeating the input) when the input is empty, longer than MaxInput, not
// UTF-8, or contains white space or control characters inside.
func ParseServerURL(in io.Reader) (string, error) {
	b, err := readInput(in)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	switch {
	case s == "":
		return "", inputError("no server URL")
	case !utf8.ValidString(s):
		return "", inputError("the server URL is not UTF-8")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", inputError("the server URL contains white space or control characters")
	}
	return s, nil
}

// ParseStore reads the credentials docker sends to store.
func ParseStore(in io.Reader) (*Credentials, error) {
	b, err := readInput(in)
	if err != nil {
		return nil, err
	}
	var c Credentials
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return nil, inputError("store expects a JSON object {\"ServerURL\",\"Username\",\"Secret\"}")
	}
	return &c, nil
}

// TargetURL turns a docker server URL into an absolute URL for routing:
// docker writes registries other than Docker Hub without a scheme, and
// talks https to them.
func TargetURL(server string) string {
	if strings.Contains(server, "://") {
		return server
	}
	return "https://" + server
}

func quoteAction(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s) + `"`
}
