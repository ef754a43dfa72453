package config

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

func TestResolveDirs(t *testing.T) {
	noHome := func() (string, error) { return "", errors.New("no home") }
	osHome := func() (string, error) { return "/from/passwd", nil }
	tests := []struct {
		name     string
		env      map[string]string
		userHome func() (string, error)
		want     Dirs
		wantErr  bool
	}{
		{
			name: "defaults from HOME",
			env:  map[string]string{"HOME": "/home/alice"},
			want: Dirs{
				Home:       "/home/alice",
				ConfigFile: "/home/alice/.config/tokenhelper/config.toml",
				CacheDir:   "/home/alice/.cache/tokenhelper",
				DataDir:    "/home/alice/.local/share/tokenhelper",
				StateDir:   "/home/alice/.local/state/tokenhelper",
				PluginDirs: []string{"/home/alice/.local/share/tokenhelper/plugins"},
			},
		},
		{
			name: "XDG variables",
			env: map[string]string{
				"HOME": "/home/alice", "XDG_CONFIG_HOME": "/x/conf/", "XDG_CACHE_HOME": "/x/cache",
				"XDG_DATA_HOME": "/x/data", "XDG_STATE_HOME": "/x/state", "XDG_RUNTIME_DIR": "/run/user/1000",
			},
			want: Dirs{
				Home:       "/home/alice",
				ConfigFile: "/x/conf/tokenhelper/config.toml",
				CacheDir:   "/x/cache/tokenhelper",
				DataDir:    "/x/data/tokenhelper",
				StateDir:   "/x/state/tokenhelper",
				RuntimeDir: "/run/user/1000",
				PluginDirs: []string{"/x/data/tokenhelper/plugins"},
			},
		},
		{
			name: "relative XDG values are ignored",
			env: map[string]string{
				"HOME": "/h", "XDG_CONFIG_HOME": "conf", "XDG_CACHE_HOME": "./cache",
				"XDG_DATA_HOME": "data", "XDG_STATE_HOME": "~/state", "XDG_RUNTIME_DIR": "run",
			},
			want: Dirs{
				Home:       "/h",
				ConfigFile: "/h/.config/tokenhelper/config.toml",
				CacheDir:   "/h/.cache/tokenhelper",
				DataDir:    "/h/.local/share/tokenhelper",
				StateDir:   "/h/.local/state/tokenhelper",
				PluginDirs: []string{"/h/.local/share/tokenhelper/plugins"},
			},
		},
		{
			name: "TOKENHELPER_CONFIG wins and is explicit",
			env:  map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": "/x", "TOKENHELPER_CONFIG": "/etc/tokenhelper/site.toml"},
			want: Dirs{
				Home:           "/h",
				ConfigFile:     "/etc/tokenhelper/site.toml",
				ConfigExplicit: true,
				CacheDir:       "/h/.cache/tokenhelper",
				DataDir:        "/h/.local/share/tokenhelper",
				StateDir:       "/h/.local/state/tokenhelper",
				PluginDirs:     []string{"/h/.local/share/tokenhelper/plugins"},
			},
		},
		{
			name:     "HOME unset falls back to the user database",
			env:      map[string]string{},
			userHome: osHome,
			want: Dirs{
				Home:       "/from/passwd",
				ConfigFile: "/from/passwd/.config/tokenhelper/config.toml",
				CacheDir:   "/from/passwd/.cache/tokenhelper",
				DataDir:    "/from/passwd/.local/share/tokenhelper",
				StateDir:   "/from/passwd/.local/state/tokenhelper",
				PluginDirs: []string{"/from/passwd/.local/share/tokenhelper/plugins"},
			},
		},
		{
			name:     "HOME set is not overridden by the fallback",
			env:      map[string]string{"HOME": "/env/home"},
			userHome: osHome,
			want: Dirs{
				Home:       "/env/home",
				ConfigFile: "/env/home/.config/tokenhelper/config.toml",
				CacheDir:   "/env/home/.cache/tokenhelper",
				DataDir:    "/env/home/.local/share/tokenhelper",
				StateDir:   "/env/home/.local/state/tokenhelper",
				PluginDirs: []string{"/env/home/.local/share/tokenhelper/plugins"},
			},
		},
		{
			name: "no home needed when every XDG variable is set",
			env: map[string]string{
				"TOKENHELPER_CONFIG": "/c.toml", "XDG_CACHE_HOME": "/c", "XDG_DATA_HOME": "/d", "XDG_STATE_HOME": "/s",
			},
			want: Dirs{
				ConfigFile: "/c.toml", ConfigExplicit: true, CacheDir: "/c/tokenhelper",
				DataDir: "/d/tokenhelper", StateDir: "/s/tokenhelper", PluginDirs: []string{"/d/tokenhelper/plugins"},
			},
		},
		{
			name:    "no home at all",
			env:     map[string]string{"XDG_CONFIG_HOME": "/c"},
			wantErr: true,
		},
		{
			name:    "relative HOME",
			env:     map[string]string{"HOME": "home"},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uh := tt.userHome
			if uh == nil {
				uh = noHome
			}
			got, err := resolveDirs(MapEnv(tt.env), uh)
			if tt.wantErr {
				if !helper.IsKind(err, helper.KindConfig) {
					t.Fatalf("err = %v, want KindConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestResolveDirsErrorNamesVariables(t *testing.T) {
	_, err := resolveDirs(MapEnv(map[string]string{"XDG_CONFIG_HOME": "/c", "XDG_DATA_HOME": "/d"}),
		func() (string, error) { return "", errors.New("none") })
	want := "cannot find the home directory: HOME is not set: set HOME, or set XDG_CACHE_HOME and XDG_STATE_HOME to absolute paths"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestResolveDirsNilEnv(t *testing.T) {
	d, err := resolveDirs(nil, func() (string, error) { return "/h", nil })
	if err != nil || d.ConfigFile != "/h/.config/tokenhelper/config.toml" {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestWithConfig(t *testing.T) {
	d := Dirs{PluginDirs: []string{"/d/plugins"}}
	got := d.WithConfig(&Config{PluginDirs: []string{"/opt/p/", "/d/plugins", "/opt/p"}})
	if !reflect.DeepEqual(got.PluginDirs, []string{"/d/plugins", "/opt/p"}) {
		t.Errorf("PluginDirs = %v", got.PluginDirs)
	}
	if len(d.PluginDirs) != 1 {
		t.Errorf("WithConfig changed its receiver: %v", d.PluginDirs)
	}
	if got := d.WithConfig(nil); !reflect.DeepEqual(got.PluginDirs, d.PluginDirs) {
		t.Errorf("nil config: %v", got.PluginDirs)
	}
}
