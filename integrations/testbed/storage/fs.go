package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/net/webdav"
)

// uploadPrefix names the temporary files of uploads in progress.
const uploadPrefix = ".tokenhelper-upload-"

// rootFS is a webdav.FileSystem confined to a directory with os.Root:
// unlike webdav.Dir, a symbolic link inside the tree cannot lead outside it.
// Names are slash-separated and cleaned as absolute paths. A Root is opened
// per operation, so the file system needs no Close.
type rootFS struct{ dir string }

// rel turns a webdav name into a name relative to the root ("." for "/").
func rel(name string) string {
	p := cleanPath(name)
	if p == "/" {
		return "."
	}
	return p[1:]
}

func (f rootFS) do(fn func(r *os.Root) error) error {
	r, err := os.OpenRoot(f.dir)
	if err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	return fn(r)
}

func (f rootFS) Mkdir(_ context.Context, name string, perm os.FileMode) error {
	return f.do(func(r *os.Root) error { return r.Mkdir(rel(name), perm) })
}

func (f rootFS) OpenFile(_ context.Context, name string, flag int, perm os.FileMode) (webdav.File, error) {
	var file *os.File
	err := f.do(func(r *os.Root) (err error) {
		file, err = r.OpenFile(rel(name), flag, perm)
		return err
	})
	if err != nil {
		return nil, err
	}
	return listing{file}, nil
}

// listing hides uploads in progress from collection listings (PROPFIND).
type listing struct{ *os.File }

func (l listing) Readdir(count int) ([]fs.FileInfo, error) {
	fis, err := l.File.Readdir(count)
	kept := fis[:0]
	for _, fi := range fis {
		if !isUploadTemp(fi.Name()) {
			kept = append(kept, fi)
		}
	}
	return kept, err
}

func (f rootFS) RemoveAll(_ context.Context, name string) error {
	n := rel(name)
	if n == "." {
		return os.ErrInvalid // never remove the storage root itself
	}
	return f.do(func(r *os.Root) error { return r.RemoveAll(n) })
}

func (f rootFS) Rename(_ context.Context, oldName, newName string) error {
	o, n := rel(oldName), rel(newName)
	if o == "." || n == "." {
		return os.ErrInvalid
	}
	return f.do(func(r *os.Root) error { return r.Rename(o, n) })
}

func (f rootFS) Stat(_ context.Context, name string) (os.FileInfo, error) {
	var fi os.FileInfo
	err := f.do(func(r *os.Root) (err error) {
		fi, err = r.Stat(rel(name))
		return err
	})
	return fi, err
}

// put stores the request body at namespace path p, the way XRootD and
// dCache do: missing parent collections are created; the body goes to a
// temporary file in the target's directory and only a complete upload
// replaces (or creates) the target, so an interrupted or oversized upload
// never leaves a truncated file. With mayOverwrite false (a storage.create
// token) the file is put in place with a hard link, which fails if the
// target appeared meanwhile; the answer is then 403.
//
// It returns the status and, for errors, a one-line reason.
func (f rootFS) put(w http.ResponseWriter, r *http.Request, p string, mayOverwrite bool) (int, string) {
	name := rel(p)
	if name == "." {
		return http.StatusMethodNotAllowed, "cannot PUT to the storage root"
	}
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return http.StatusInternalServerError, "storage root unavailable"
	}
	defer func() { _ = root.Close() }()

	old, statErr := root.Stat(name)
	existed := statErr == nil
	if existed && old.IsDir() {
		return http.StatusMethodNotAllowed, "the target is a collection"
	}
	if existed && !mayOverwrite {
		return http.StatusForbidden, "the target exists: overwriting needs storage.modify"
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o777); err != nil {
			return http.StatusConflict, "cannot create the parent collection"
		}
	}

	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(path.Dir(name), uploadPrefix+hex.EncodeToString(rnd[:]))
	out, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return http.StatusConflict, "cannot create a file in the parent collection"
	}
	committed := false
	defer func() {
		if !committed {
			_ = root.Remove(tmp)
		}
	}()

	body := &errReader{r: r.Body}
	_, copyErr := io.Copy(out, body)
	closeErr := out.Close()
	var mbe *http.MaxBytesError
	switch {
	case errors.As(body.err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", mbe.Limit)
	case isTimeout(body.err):
		return http.StatusRequestTimeout, "the upload did not finish within the request timeout"
	case body.err != nil:
		return http.StatusBadRequest, "the upload was interrupted"
	case copyErr != nil || closeErr != nil:
		if errors.Is(copyErr, syscall.ENOSPC) || errors.Is(closeErr, syscall.ENOSPC) {
			return http.StatusInsufficientStorage, "no space left on the storage"
		}
		return http.StatusInternalServerError, "writing the file failed"
	}
	if existed {
		_ = root.Chmod(tmp, old.Mode().Perm())
	}

	if mayOverwrite {
		err = root.Rename(tmp, name)
	} else {
		err = root.Link(tmp, name)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			// No hard links on this file system: check, then rename.
			if _, serr := root.Lstat(name); serr == nil {
				err = fs.ErrExist
			} else {
				err = root.Rename(tmp, name)
			}
		}
	}
	switch {
	case errors.Is(err, fs.ErrExist):
		return http.StatusForbidden, "the target exists: overwriting needs storage.modify"
	case err != nil:
		return http.StatusInternalServerError, "cannot put the file in place"
	}
	committed = true
	_ = root.Remove(tmp) // the hard link case leaves the temporary name behind

	if fi, err := root.Stat(name); err == nil {
		// The ETag webdav computes for the same file.
		w.Header().Set("ETag", fmt.Sprintf(`"%x%x"`, fi.ModTime().UnixNano(), fi.Size()))
	}
	if existed {
		return http.StatusNoContent, ""
	}
	return http.StatusCreated, ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errReader remembers the first read error other than io.EOF, so a failed
// upload can be told apart from a failed write.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// allowHeader lists the methods a resource supports, like webdav's OPTIONS
// but without LOCK/UNLOCK/POST, which this storage does not offer.
func allowHeader(fi os.FileInfo, err error) string {
	switch {
	case err != nil:
		return "OPTIONS, PUT, MKCOL"
	case fi.IsDir():
		return "OPTIONS, DELETE, PROPPATCH, COPY, MOVE, PROPFIND, MKCOL"
	}
	return "OPTIONS, GET, HEAD, DELETE, PROPPATCH, COPY, MOVE, PROPFIND, PUT"
}

// isUploadTemp reports whether a base name is an upload in progress.
func isUploadTemp(base string) bool { return strings.HasPrefix(base, uploadPrefix) }
