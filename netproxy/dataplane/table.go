package dataplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Table is the desired data plane state, grouped by owner (usually the
// "namespace/name" of a Kubernetes Service). It programs a [Programmer]
// incrementally: setting an owner's services upserts only the frontends whose
// state changed and deletes the frontends the owner no longer has.
// A Table is safe for concurrent use.
type Table struct {
	mu      sync.Mutex
	p       Programmer
	owners  map[string][]Frontend
	current map[Frontend]entry
}

type entry struct {
	owner string
	svc   Service
}

// NewTable returns an empty table that programs p.
func NewTable(p Programmer) *Table {
	return &Table{p: p, owners: map[string][]Frontend{}, current: map[Frontend]entry{}}
}

// Programmer returns the data plane this table programs.
func (t *Table) Programmer() Programmer { return t.p }

// Set replaces the services of owner. Frontends the owner had before and no
// longer lists are deleted; unchanged frontends are not touched. When two
// owners claim the same frontend the later Set wins.
func (t *Table) Set(ctx context.Context, owner string, svcs []Service) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.setLocked(ctx, owner, svcs)
}

func (t *Table) setLocked(ctx context.Context, owner string, svcs []Service) error {
	var errs []error
	keep := make(map[Frontend]bool, len(svcs))
	fes := make([]Frontend, 0, len(svcs))
	for _, s := range svcs {
		s.Backends = slices.Clone(s.Backends) // the caller may reuse its slice
		s.Normalize()
		keep[s.Frontend] = true
		fes = append(fes, s.Frontend)
		if old, ok := t.current[s.Frontend]; ok && old.svc.Equal(s) {
			if old.owner != owner {
				t.current[s.Frontend] = entry{owner: owner, svc: s}
			}
			continue
		}
		if err := t.p.Upsert(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("program %s (%s): %w", s.Frontend, s.Name, err))
			delete(t.current, s.Frontend)
			continue
		}
		t.current[s.Frontend] = entry{owner: owner, svc: s}
	}
	for _, fe := range t.owners[owner] {
		if keep[fe] {
			continue
		}
		if e, ok := t.current[fe]; ok && e.owner != owner {
			continue // another owner took it over
		}
		if err := t.p.Delete(ctx, fe); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", fe, err))
		}
		delete(t.current, fe)
	}
	if len(fes) == 0 {
		delete(t.owners, owner)
	} else {
		t.owners[owner] = fes
	}
	return errors.Join(errs...)
}

// Remove deletes every frontend of owner.
func (t *Table) Remove(ctx context.Context, owner string) error {
	return t.Set(ctx, owner, nil)
}

// Resync replaces the whole table with all (owner → services) and removes
// every frontend the programmer holds that is not in all, including entries
// left by an earlier process. A [BatchProgrammer] gets all changed
// frontends in one call.
func (t *Table) Resync(ctx context.Context, all map[string][]Service) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for owner := range t.owners {
		if _, ok := all[owner]; !ok {
			if err := t.setLocked(ctx, owner, nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	owners := make([]string, 0, len(all))
	for o := range all {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	if bp, ok := t.p.(BatchProgrammer); ok {
		var changed []Service
		var changedOwner []string
		for _, o := range owners {
			for _, s := range all[o] {
				s.Backends = slices.Clone(s.Backends)
				s.Normalize()
				if old, ok := t.current[s.Frontend]; ok && old.svc.Equal(s) {
					continue
				}
				changed = append(changed, s)
				changedOwner = append(changedOwner, o)
			}
		}
		for i, err := range bp.UpsertMany(ctx, changed) {
			s := changed[i]
			if err != nil {
				// Not recorded: setLocked below retries it one by one and
				// reports the error if it fails again.
				delete(t.current, s.Frontend)
				continue
			}
			t.current[s.Frontend] = entry{owner: changedOwner[i], svc: s}
		}
	}
	for _, o := range owners {
		if err := t.setLocked(ctx, o, all[o]); err != nil {
			errs = append(errs, err)
		}
	}
	for _, fe := range t.p.Programmed() {
		if _, ok := t.current[fe]; ok {
			continue
		}
		if err := t.p.Delete(ctx, fe); err != nil {
			errs = append(errs, fmt.Errorf("remove stale %s: %w", fe, err))
		}
	}
	return errors.Join(errs...)
}

// Services returns the programmed services sorted by frontend.
func (t *Table) Services() []Service {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Service, 0, len(t.current))
	for _, e := range t.current {
		out = append(out, e.svc)
	}
	slices.SortFunc(out, func(a, b Service) int { return a.Frontend.Compare(b.Frontend) })
	return out
}

// Stats counts the programmed frontends and their backends (all and ready).
func (t *Table) Stats() (frontends, backends, ready int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.current {
		frontends++
		backends += len(e.svc.Backends)
		for _, b := range e.svc.Backends {
			if b.Ready {
				ready++
			}
		}
	}
	return frontends, backends, ready
}
