package attest

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// entry is one archive member in a format-neutral form.
type entry struct {
	name     string // as in the archive
	mode     fs.FileMode
	linkname string // symlinks
	open     func() (io.ReadCloser, error)
}

// unpack extracts the archive file (format "tar.gz", "tar" or "zip") into
// dst through an os.Root, within limits. Every entry name is checked
// (cleanName) before anything is written; the common top-level directory,
// if all entries share one, is dropped.
func unpack(file, format, dst string, l Limits) error {
	entries, closeFn, err := readEntries(file, format, l)
	if err != nil {
		return err
	}
	defer closeFn()
	names := make([]string, len(entries))
	for i, e := range entries {
		if names[i], err = cleanName(e.name); err != nil {
			return err
		}
	}
	strip := commonTop(names, entries)
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	var total int64
	for i, e := range entries {
		name := names[i]
		if strip != "" {
			name = strings.TrimPrefix(strings.TrimPrefix(name, strip), "/")
			if name == "" {
				continue // the top-level directory itself
			}
		}
		n, err := writeEntry(root, name, e, l.MaxUnpacked-total)
		if err != nil {
			return fmt.Errorf("archive entry %q: %w", name, err)
		}
		total += n
	}
	return nil
}

// readEntries lists the archive's entries: at most MaxFiles.
func readEntries(file, format string, l Limits) ([]entry, func(), error) {
	if format == "zip" {
		zr, err := zip.OpenReader(file)
		if err != nil {
			return nil, nil, fmt.Errorf("couldn't read the zip archive: %w", err)
		}
		if len(zr.File) > l.MaxFiles {
			zr.Close()
			return nil, nil, fmt.Errorf("%w: over %d entries", ErrTooLarge, l.MaxFiles)
		}
		var out []entry
		for _, zf := range zr.File {
			e := entry{name: zf.Name, mode: zf.Mode(), open: zf.Open}
			if e.mode&fs.ModeSymlink != 0 {
				rc, err := zf.Open()
				if err != nil {
					zr.Close()
					return nil, nil, err
				}
				b, err := io.ReadAll(io.LimitReader(rc, 4096))
				rc.Close()
				if err != nil {
					zr.Close()
					return nil, nil, err
				}
				e.linkname = string(b)
			}
			out = append(out, e)
		}
		return out, func() { zr.Close() }, nil
	}
	return readTar(file, format == "tar.gz", l)
}

// readTar reads a tar stream into a spool directory beside the archive, so
// that every name is checked before anything is unpacked.
func readTar(file string, gz bool, l Limits) ([]entry, func(), error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if gz {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, nil, fmt.Errorf("couldn't read the gzip archive: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	spool, err := os.MkdirTemp(filepath.Dir(file), "spool-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(spool) }
	tr := tar.NewReader(r)
	var out []entry
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("couldn't read the tar archive: %w", err)
		}
		if len(out) >= l.MaxFiles {
			cleanup()
			return nil, nil, fmt.Errorf("%w: over %d entries", ErrTooLarge, l.MaxFiles)
		}
		e := entry{name: h.Name, mode: h.FileInfo().Mode(), linkname: h.Linkname}
		switch h.Typeflag {
		case tar.TypeReg:
			total += h.Size
			if h.Size < 0 || total > l.MaxUnpacked {
				cleanup()
				return nil, nil, fmt.Errorf("%w: unpacks to over %d bytes", ErrTooLarge, l.MaxUnpacked)
			}
			sp := filepath.Join(spool, fmt.Sprint(len(out)))
			if err := spoolFile(sp, tr, h.Size); err != nil {
				cleanup()
				return nil, nil, err
			}
			e.open = func() (io.ReadCloser, error) { return os.Open(sp) }
		case tar.TypeDir, tar.TypeSymlink:
		case tar.TypeXGlobalHeader:
			continue
		default: // hard links, devices, FIFOs
			cleanup()
			return nil, nil, fmt.Errorf("%w: %q is neither a file, a directory nor a symbolic link", ErrUnsafeArchive, h.Name)
		}
		out = append(out, e)
	}
	return out, cleanup, nil
}

func spoolFile(name string, r io.Reader, size int64) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, r, size); err != nil {
		f.Close()
		return fmt.Errorf("couldn't read the tar archive: %w", err)
	}
	return f.Close()
}

// cleanName checks an archive entry name: relative, no ".." segment, no
// backslash or NUL; a leading "./" and a trailing "/" are dropped.
func cleanName(n string) (string, error) {
	bad := fmt.Errorf("%w: %q escapes the source directory or is not a clean relative name", ErrUnsafeArchive, n)
	if strings.ContainsAny(n, "\\\x00") || strings.HasPrefix(n, "/") {
		return "", bad
	}
	n = strings.TrimSuffix(strings.TrimPrefix(n, "./"), "/")
	if n == "" || n == "." {
		return ".", nil
	}
	for _, seg := range strings.Split(n, "/") {
		if seg == ".." || seg == "" || seg == "." {
			return "", bad
		}
	}
	return n, nil
}

// commonTop is the one top-level directory every entry lies in, or "".
func commonTop(names []string, entries []entry) string {
	top := ""
	for i, n := range names {
		if n == "." {
			continue
		}
		first, _, nested := strings.Cut(n, "/")
		if !nested && !entries[i].mode.IsDir() {
			return "" // a file at the top level
		}
		if top == "" {
			top = first
		} else if first != top {
			return ""
		}
	}
	return top
}

// writeEntry creates one entry under root and returns the bytes written,
// at most budget.
func writeEntry(root *os.Root, name string, e entry, budget int64) (int64, error) {
	if name == "." {
		return 0, nil
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return 0, err
		}
	}
	switch {
	case e.mode.IsDir():
		err := root.Mkdir(name, 0o755)
		if errors.Is(err, fs.ErrExist) {
			if fi, serr := root.Lstat(name); serr == nil && fi.IsDir() {
				return 0, nil
			}
		}
		return 0, err
	case e.mode&fs.ModeSymlink != 0:
		if err := checkLink(name, e.linkname); err != nil {
			return 0, err
		}
		return 0, root.Symlink(e.linkname, name)
	case e.mode.IsRegular():
		return writeFile(root, name, e, budget)
	}
	return 0, fmt.Errorf("%w: neither a file, a directory nor a symbolic link", ErrUnsafeArchive)
}

// checkLink refuses a symbolic link whose target is absolute or resolves
// outside the source directory.
func checkLink(name, target string) error {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsAny(target, "\\\x00") {
		return fmt.Errorf("%w: link to %q", ErrUnsafeArchive, target)
	}
	if j := path.Join(path.Dir(name), target); j == ".." || strings.HasPrefix(j, "../") {
		return fmt.Errorf("%w: link to %q points outside the source", ErrUnsafeArchive, target)
	}
	return nil
}

func writeFile(root *os.Root, name string, e entry, budget int64) (int64, error) {
	perm := fs.FileMode(0o644)
	if e.mode&0o111 != 0 {
		perm = 0o755
	}
	// O_EXCL: an entry never overwrites (or writes through) an earlier one.
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	in, err := e.open()
	if err != nil {
		return 0, err
	}
	defer in.Close()
	n, err := io.Copy(out, io.LimitReader(in, budget+1))
	if err != nil {
		return n, err
	}
	if n > budget {
		return n, fmt.Errorf("%w: unpacks to too many bytes", ErrTooLarge)
	}
	return n, out.Close()
}
