package testbed

import (
	"net/http"

	"github.com/tokenhelper/tokenhelper/integrations/testbed/storage"
)

// storagePrefix is where the storage is mounted on its listener.
const storagePrefix = "/storage"

// defaultStorage builds the WLCG WebDAV storage of
// integrations/testbed/storage.
func defaultStorage(env StorageEnv) (http.Handler, error) {
	return storage.New(storage.Options{
		Issuer:     env.Issuer,
		HTTPClient: env.HTTPClient,
		Audiences:  env.Audiences,
		Root:       env.Root,
		Prefix:     env.Prefix,
		Now:        env.Now,
	})
}
