package native_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/tokenhelper/tokenhelper/cmd/tokenhelper/cli"
)

// envBeTokenhelper makes the test binary run as the tokenhelper command
// (the process tests start it many times: the real CLI, no build step).
const envBeTokenhelper = "NATIVE_TEST_BE_TOKENHELPER"

func TestMain(m *testing.M) {
	if os.Getenv(envBeTokenhelper) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, append([]string{"tokenhelper"}, os.Args[1:]...), cli.OSSystem())
		stop()
		os.Exit(code)
	}
	// The test bed's OpenID provider library logs every request through
	// the default logger.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
