package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/turnout/turnout/internal/deploy"
)

var _ deploy.Importer = (*Store)(nil)

// A transaction of Import holds at most importOps puts and about
// importBytes of values: etcd refuses larger ones by default
// (--max-txn-ops 128, --max-request-bytes 1.5 MiB).
const (
	importOps   = 100
	importBytes = 1 << 20
)

// Import writes h — ids, seqs and times as they are — under the prefix,
// when it holds no deployment, no audit event and no active pointer;
// otherwise it writes nothing and returns an error wrapping
// deploy.ErrNotEmpty.
//
// A long history does not fit in one etcd transaction, so Import writes it
// in several: the first checks that the prefix is empty and takes the audit
// seq past h's (a node auditing meanwhile appends after it); each next one
// checks that there is still no active pointer; the last sets it. A node
// applying to the prefix meanwhile finds deployment 1 taken and gets a
// conflict. When a transaction fails, Import deletes what it wrote.
func (s *Store) Import(ctx context.Context, h deploy.History) error {
	if err := h.Check(); err != nil {
		return err
	}
	type kv struct{ key, val string }
	var puts []kv
	if n := len(h.Audit); n > 0 {
		puts = append(puts, kv{s.auditSeqKey(), strconv.FormatUint(h.Audit[n-1].Seq, 10)})
	}
	for _, d := range h.Deployments {
		v, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		puts = append(puts, kv{s.deploymentKey(d.ID), string(v)})
	}
	for _, e := range h.Audit {
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		puts = append(puts, kv{s.auditKey(e.Seq), string(v)})
	}
	if h.Active != 0 {
		puts = append(puts, kv{s.activeKey(), strconv.FormatUint(h.Active, 10)})
	}

	empty := []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(s.deploymentsPrefix()), "=", 0).WithPrefix(),
		clientv3.Compare(clientv3.CreateRevision(s.auditPrefix()), "=", 0).WithPrefix(),
		clientv3.Compare(clientv3.CreateRevision(s.auditSeqKey()), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(s.activeKey()), "=", 0),
	}
	noActive := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(s.activeKey()), "=", 0)}
	var written []string
	for n := 1; len(puts) > 0; n++ {
		first := n == 1
		if s.beforeImportTxn != nil {
			s.beforeImportTxn(n)
		}
		var ops []clientv3.Op
		var keys []string
		size := 0
		for len(puts) > 0 && len(ops) < importOps && (len(ops) == 0 || size+len(puts[0].val) <= importBytes) {
			ops = append(ops, clientv3.OpPut(puts[0].key, puts[0].val))
			keys = append(keys, puts[0].key)
			size += len(puts[0].key) + len(puts[0].val)
			puts = puts[1:]
		}
		cmp := noActive
		if first {
			cmp = empty
		}
		rctx, cancel := s.request(ctx)
		resp, err := s.client.Txn(rctx).If(cmp...).Then(ops...).Commit()
		if err != nil {
			err = s.fail(rctx, "import", err)
		}
		cancel()
		switch {
		case err == nil && resp.Succeeded:
			written = append(written, keys...)
			continue
		case err == nil && first:
			return fmt.Errorf("etcd at %s under %s holds deployments or audit events: %w; copy under another --prefix, or delete that one first (etcdctl del --prefix %s)",
				s.endpoints, s.prefix, deploy.ErrNotEmpty, s.prefix)
		case err == nil:
			err = fmt.Errorf("import: a deployment was made under %s while the history was being written; nothing of the copy is kept", s.prefix)
		}
		if cerr := s.unwrite(written); cerr != nil {
			return fmt.Errorf("%w; and removing the part written failed, remove it by hand (etcdctl del --prefix %s): %v", err, s.prefix, cerr)
		}
		return err
	}
	return nil
}

// unwrite deletes keys, importOps at a time, with a context of its own: the
// caller's may be what ran out.
func (s *Store) unwrite(keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), importOps)
		ops := make([]clientv3.Op, 0, n)
		for _, k := range keys[:n] {
			ops = append(ops, clientv3.OpDelete(k))
		}
		rctx, cancel := s.request(context.Background())
		_, err := s.client.Txn(rctx).Then(ops...).Commit()
		if err != nil {
			err = s.fail(rctx, "remove the imported keys", err)
		}
		cancel()
		if err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}
