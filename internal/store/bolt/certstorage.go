package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	bbolt "go.etcd.io/bbolt"
)

// bucketCerts holds certmagic's keys (ACME account, certificates, keys,
// OCSP staples), so certificates live in the same file as the deployments
// and a restart serves the stored certificate instead of ordering again.
var bucketCerts = []byte("certmagic")

// CertStorage is a certmagic.Storage over the store's bbolt file. Keys are
// certmagic's slash-separated paths; a "directory" is any prefix ending at
// a slash. Each value is stored with its modification time (8 bytes of Unix
// nanoseconds, big-endian, then the data).
//
// Locks are in-process only. That is enough for one node: bbolt takes an
// exclusive lock on the file, so no other process can use the same store
// and obtain certificates for it concurrently. A fleet sharing a store
// (etcd) needs distributed locks instead.
type CertStorage struct {
	db *bbolt.DB

	mu    sync.Mutex
	locks map[string]chan struct{} // closed on Unlock
}

// CertStorage returns the certmagic storage kept in s. Every call returns
// a storage with its own locks; use one per process.
func (s *Store) CertStorage() *CertStorage {
	return &CertStorage{db: s.db, locks: make(map[string]chan struct{})}
}

var _ certmagic.Storage = (*CertStorage)(nil)

// Store writes value at key, replacing any earlier value.
func (c *CertStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errors.New("cert storage: empty key")
	}
	v := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
	copy(v[8:], value)
	return c.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCerts)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), v)
	})
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (c *CertStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []byte
	err := c.db.View(func(tx *bbolt.Tx) error {
		v := c.get(tx, key)
		if v == nil {
			return fmt.Errorf("cert storage: %s: %w", key, fs.ErrNotExist)
		}
		out = slices.Clone(v[8:])
		return nil
	})
	return out, err
}

func (c *CertStorage) get(tx *bbolt.Tx, key string) []byte {
	b := tx.Bucket(bucketCerts)
	if b == nil {
		return nil
	}
	if v := b.Get([]byte(key)); len(v) >= 8 {
		return v
	}
	return nil
}

// Delete removes key and, like removing a directory, every key below it.
// Deleting a key that does not exist is not an error, as certmagic.Storage
// asks.
func (c *CertStorage) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCerts)
		if b == nil {
			return nil
		}
		var del [][]byte
		if b.Get([]byte(key)) != nil {
			del = append(del, []byte(key))
		}
		prefix := []byte(dirPrefix(key))
		cur := b.Cursor()
		for k, _ := cur.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = cur.Next() {
			del = append(del, slices.Clone(k))
		}
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Exists reports whether key is a value or a directory.
func (c *CertStorage) Exists(ctx context.Context, key string) bool {
	_, err := c.Stat(ctx, key)
	return err == nil
}

// List returns the keys directly under path, or every key below it when
// recursive is set. A path with nothing below it is an error wrapping
// fs.ErrNotExist.
func (c *CertStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []string
	err := c.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCerts)
		if b == nil {
			return nil
		}
		prefix := dirPrefix(path)
		cur := b.Cursor()
		for k, _ := cur.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, _ = cur.Next() {
			key := string(k)
			if !recursive {
				// Only the first level: "a/b/c" under "a" lists "a/b".
				if i := strings.IndexByte(key[len(prefix):], '/'); i >= 0 {
					key = key[:len(prefix)+i]
				}
			}
			if len(out) == 0 || out[len(out)-1] != key {
				out = append(out, key)
			}
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("cert storage: %s: %w", path, fs.ErrNotExist)
	}
	return out, err
}

// Stat describes key: a value (terminal) or a directory.
func (c *CertStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	if err := ctx.Err(); err != nil {
		return certmagic.KeyInfo{}, err
	}
	info := certmagic.KeyInfo{Key: key}
	err := c.db.View(func(tx *bbolt.Tx) error {
		if v := c.get(tx, key); v != nil {
			info.IsTerminal = true
			info.Size = int64(len(v) - 8)
			info.Modified = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
			return nil
		}
		if b := tx.Bucket(bucketCerts); b != nil {
			prefix := dirPrefix(key)
			if k, _ := b.Cursor().Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix) {
				return nil
			}
		}
		return fmt.Errorf("cert storage: %s: %w", key, fs.ErrNotExist)
	})
	return info, err
}

// dirPrefix is the prefix of the keys below path ("" for the root).
func dirPrefix(path string) string {
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return ""
	}
	return path + "/"
}

// Lock waits until the lock called name is free and takes it, or returns
// ctx's error.
func (c *CertStorage) Lock(ctx context.Context, name string) error {
	for {
		c.mu.Lock()
		held, busy := c.locks[name]
		if !busy {
			c.locks[name] = make(chan struct{})
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Unlock releases the lock called name.
func (c *CertStorage) Unlock(_ context.Context, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	held, busy := c.locks[name]
	if !busy {
		return fmt.Errorf("cert storage: unlock %q: not locked", name)
	}
	close(held)
	delete(c.locks, name)
	return nil
}
