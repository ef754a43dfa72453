package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/tokenhelper/tokenhelper/helper"
)

// MaxFileSize is the largest config file tokenhelper reads (1 MiB).
const MaxFileSize = 1 << 20

// LoadOptions says which file to load and whom it must belong to.
type LoadOptions struct {
	// Path of the config file (Dirs.ConfigFile or --config).
	Path string
	// Explicit is true when the user named Path (--config or
	// TOKENHELPER_CONFIG): a missing file is then an error instead of an
	// empty configuration.
	Explicit bool
	// UID is the user the file and its directory must belong to (root is
	// always accepted). Load sets it to os.Geteuid().
	UID int
}

// Load reads the config file at path for the current user. A missing file
// gives an empty Config (callers fall back to WLCG discovery) unless
// explicit is true, which makes it a KindConfig error. A file (or its
// directory) that others can write, or that belongs to another user, is
// refused with KindUnsafe: whoever controls it controls where tokens go.
func Load(path string, explicit bool) (*Config, error) {
	return LoadOptions{Path: path, Explicit: explicit, UID: os.Geteuid()}.Load()
}

// Load reads and validates the file o.Path. See the package function Load.
func (o LoadOptions) Load() (*Config, error) {
	if o.Path == "" {
		if o.Explicit {
			return nil, helper.Errorf(helper.KindConfig, "the config file name is empty").
				WithFix("pass a file to --config or set TOKENHELPER_CONFIG to a file")
		}
		return emptyConfig(""), nil
	}
	f, err := openNoBlock(o.Path)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist) && isSymlink(o.Path):
			return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("config file %s is a symbolic link to a file that does not exist", o.Path)).
				WithFix("fix or remove the link")
		case errors.Is(err, fs.ErrNotExist) && !o.Explicit:
			return emptyConfig(o.Path), nil
		case errors.Is(err, fs.ErrNotExist):
			return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("config file %s does not exist", o.Path)).
				WithFix("create it (see docs/config.md), or point --config / TOKENHELPER_CONFIG at an existing file")
		case errors.Is(err, fs.ErrPermission):
			return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot read config file %s: permission denied", o.Path)).
				WithFix("run: chmod u+r %s", o.Path)
		}
		return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot open config file %s: %v", o.Path, errText(err)))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot read config file %s: %v", o.Path, errText(err)))
	}
	if !fi.Mode().IsRegular() {
		return nil, helper.Errorf(helper.KindConfig, "config file %s is not a regular file", o.Path).
			WithFix("point --config / TOKENHELPER_CONFIG at a TOML file")
	}
	if err := checkSafe(o.Path, fi, o.UID); err != nil {
		return nil, err
	}
	if fi.Size() > MaxFileSize {
		return nil, tooLarge(o.Path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot read config file %s: %v", o.Path, errText(err)))
	}
	return Parse(o.Path, data)
}

func isSymlink(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

func emptyConfig(searched string) *Config {
	return &Config{Profiles: map[string]*Profile{}, searched: searched}
}

func tooLarge(name string) error {
	return helper.Errorf(helper.KindConfig, "config file %s is larger than 1 MiB", name).
		WithFix("a tokenhelper config is a few kilobytes; check that the path names the right file")
}

// errText is the operating-system part of a path error (the path is
// already in our message).
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes and validates a config document. name is used in error
// messages ("name:12: ...") and becomes Config.Path. Errors are
// *helper.Error of KindConfig with one line naming the file, the line and
// the key.
func Parse(name string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, tooLarge(name)
	}
	// Pass 1: syntax, duplicate keys and tables (with line:column).
	var generic map[string]any
	if err := toml.Unmarshal(data, &generic); err != nil {
		return nil, tomlError(name, err)
	}
	// Pass 2: where every key is, and whether the schema knows it.
	ix, err := buildIndex(data)
	if err != nil {
		return nil, tomlError(name, err)
	}
	for _, e := range ix.entries {
		if msg := checkEntry(e); msg != "" {
			return nil, helper.Errorf(helper.KindConfig, "%s: %s", location(name, e.line), msg)
		}
	}
	// Pass 3: decode into the types.
	c := &Config{}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, tomlError(name, err)
	}
	c.Path = name
	if err := c.validate(name, ix); err != nil {
		return nil, err
	}
	return c, nil
}

func location(name string, line int) string {
	if name == "" {
		name = "config"
	}
	if line > 0 {
		return name + ":" + strconv.Itoa(line)
	}
	return name
}

// tomlError turns a go-toml error into one line with the position.
func tomlError(name string, err error) error {
	var de *toml.DecodeError
	var se *toml.StrictMissingError
	switch {
	case errors.As(err, &se) && len(se.Errors) > 0:
		de = &se.Errors[0]
		row, _ := de.Position()
		return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s: unknown key %s", location(name, row), displayPath(de.Key())))
	case errors.As(err, &de):
		row, col := de.Position()
		loc := location(name, row)
		if row > 0 {
			loc += ":" + strconv.Itoa(col)
		}
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s: invalid TOML: %s", loc, oneLine(msg)))
	}
	return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("%s: invalid TOML: %s", location(name, 0), oneLine(strings.TrimPrefix(err.Error(), "toml: "))))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return truncate(strings.ReplaceAll(s, "\n", " "), 200)
}
