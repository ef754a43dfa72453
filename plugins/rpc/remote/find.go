package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
)

// ExecPrefix starts every plugin executable's name: tokenhelper-plugin-NAME.
const ExecPrefix = "tokenhelper-plugin-"

// ValidName reports whether name can be a plugin's NAME: lowercase
// letters, digits and "-", not starting with "-" (as config validates
// backend names).
func ValidName(name string) bool {
	if name == "" || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isNameChar(c) {
			return false
		}
	}
	return true
}

func isNameChar(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' }

// Found is a plugin executable in the plugin directories or pinned by path.
type Found struct {
	Name string
	Path string
	// Pin is the [plugins.NAME] entry; Pinned says there is one.
	Pin    config.PluginPin
	Pinned bool
	// Shadowed lists executables of the same name later in the search
	// order, which are not used.
	Shadowed []string
}

// Target returns the launch target of f.
func (f Found) Target() Target {
	return Target{Name: f.Name, Path: f.Path, SHA256: strings.ToLower(f.Pin.SHA256)}
}

// Find locates the plugin for backend name: the path pinned in
// [plugins.NAME] if any, else the first tokenhelper-plugin-NAME in dirs.
// It does not check the executable (Check does, before each launch).
func Find(name string, dirs []string, pins map[string]config.PluginPin) (Target, error) {
	if !ValidName(name) {
		return Target{}, helper.Errorf(helper.KindConfig, "invalid backend name %q", Clean(name)).
			WithFix("use lowercase letters, digits and \"-\" (the NAME of tokenhelper-plugin-NAME)")
	}
	pin, pinned := pins[name]
	if pinned && pin.Path != "" {
		if _, err := os.Stat(pin.Path); err != nil {
			return Target{}, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("plugin %q: the path pinned in [plugins.%s] is not there: %s", name, name, pin.Path)).
				WithFix("install the plugin at %s, or correct path in [plugins.%s]", pin.Path, name)
		}
		return Target{Name: name, Path: pin.Path, SHA256: strings.ToLower(pin.SHA256)}, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, ExecPrefix+name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return Target{Name: name, Path: p, SHA256: strings.ToLower(pin.SHA256)}, nil
		}
	}
	where := "no plugin directory is configured"
	if len(dirs) > 0 {
		where = "searched " + strings.Join(dirs, ", ")
	}
	fix := "install tokenhelper-plugin-" + name + " into " + firstOr(dirs, "$XDG_DATA_HOME/tokenhelper/plugins") + " (tokenhelper plugin list shows what is installed)"
	return Target{}, helper.Errorf(helper.KindConfig, "backend %q is not built in and no tokenhelper-plugin-%s was found (%s)", name, name, where).
		WithFix("%s", fix)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// List returns every plugin in dirs and every plugin pinned by path,
// sorted by name. Unreadable or missing directories are skipped.
func List(dirs []string, pins map[string]config.PluginPin) []Found {
	byName := map[string]*Found{}
	for name, pin := range pins {
		if pin.Path != "" {
			byName[name] = &Found{Name: name, Path: pin.Path, Pin: pin, Pinned: true}
		}
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), ExecPrefix)
			if !ok || !ValidName(name) {
				continue
			}
			p := filepath.Join(d, e.Name())
			if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
				continue
			}
			if f, seen := byName[name]; seen {
				if f.Path != p {
					f.Shadowed = append(f.Shadowed, p)
				}
				continue
			}
			pin, pinned := pins[name]
			byName[name] = &Found{Name: name, Path: p, Pin: pin, Pinned: pinned}
		}
	}
	out := make([]Found, 0, len(byName))
	for _, f := range byName {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SHA256File returns the hex SHA-256 of a file's contents.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(f)
}

func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Check decides whether t may be launched, just before launching it, and
// returns the file it checked (compare it with os.SameFile right before
// the exec). A pinned plugin must match its checksum (a mismatch is
// KindUnsafe naming the expected and actual sums); an unpinned one must
// be owned by uid or root and neither it nor its directory (nor, for a
// symlink, the link's directory) may be writable by others. Built-in
// targets need no check.
func Check(t Target, uid int) (os.FileInfo, error) {
	if t.Builtin {
		return nil, nil
	}
	f, err := os.Open(t.Path)
	if err != nil {
		return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s: cannot open it: %s", t, errText(err))).
			WithFix("reinstall it, or correct [plugins.%s] / plugin_dirs", t.Name)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s: %s", t, errText(err)))
	}
	if !fi.Mode().IsRegular() {
		return nil, helper.Errorf(helper.KindConfig, "%s is not a regular file", t).WithFix("reinstall the plugin")
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return nil, helper.Errorf(helper.KindConfig, "%s is not executable", t).WithFix("chmod 755 %s", t.Path)
	}
	if t.SHA256 != "" {
		sum, err := hashReader(f)
		if err != nil {
			return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s: cannot read it: %s", t, errText(err)))
		}
		if !strings.EqualFold(sum, t.SHA256) {
			return nil, helper.Errorf(helper.KindUnsafe, "%s does not match its pinned checksum: expected sha256 %s, actual %s", t, strings.ToLower(t.SHA256), sum).
				WithFix("if you installed a new version on purpose, set sha256 = %q in [plugins.%s]; otherwise find out who changed %s", sum, t.Name, t.Path)
		}
		return fi, nil
	}
	if err := safeOwner(t, t.Path, fi, uid); err != nil {
		return nil, err
	}
	dirs := []string{filepath.Dir(t.Path)}
	if real, err := filepath.EvalSymlinks(t.Path); err == nil && filepath.Dir(real) != dirs[0] {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		di, err := os.Stat(d)
		if err != nil {
			return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s: %s", t, errText(err)))
		}
		if err := safeOwner(t, d, di, uid); err != nil {
			return nil, err
		}
	}
	return fi, nil
}

func safeOwner(t Target, path string, fi os.FileInfo, uid int) error {
	what := "its file"
	if fi.IsDir() {
		what = "its directory " + path
	}
	if owner, ok := fileOwner(fi); ok && owner != uid && owner != 0 {
		return helper.Errorf(helper.KindUnsafe, "%s: %s belongs to another user (uid %d)", t, what, owner).
			WithFix("install the plugin as yourself or root, or pin its checksum (tokenhelper plugin pin %s prints the lines for config.toml)", t.Name)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return helper.Errorf(helper.KindUnsafe, "%s: %s is writable by other users (mode %04o)", t, what, fi.Mode().Perm()).
			WithFix("chmod go-w %s, or pin the plugin's checksum (tokenhelper plugin pin %s prints the lines for config.toml)", path, t.Name)
	}
	return nil
}

func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
