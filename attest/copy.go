package attest

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// copyTree copies the directory src into dst (an existing empty
// directory): directories, regular files (keeping the executable bit) and
// symbolic links that stay inside; a top-level entry named skip (".git")
// is left out. Other file kinds are refused. At most MaxFiles entries and
// MaxUnpacked bytes.
func copyTree(src, dst string, l Limits, skip string) error {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	var files int
	var total int64
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if skip != "" && rel == skip {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if files++; files > l.MaxFiles {
			return fmt.Errorf("%w: over %d files", ErrTooLarge, l.MaxFiles)
		}
		name := filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir():
			return root.Mkdir(name, 0o755)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := checkLink(name, filepath.ToSlash(target)); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			return root.Symlink(target, name)
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			if total += info.Size(); total > l.MaxUnpacked {
				return fmt.Errorf("%w: over %d bytes", ErrTooLarge, l.MaxUnpacked)
			}
			return copyFile(root, name, p, info.Mode())
		default:
			return fmt.Errorf("%s: not a file, a directory nor a symbolic link", rel)
		}
	})
}

func copyFile(root *os.Root, name, from string, mode fs.FileMode) error {
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
