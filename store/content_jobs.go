package store

import (
	"reflect"

	"github.com/riverqueue/river"
)

// AddJobOnce schedules a job insert for commit time unless an equal job
// (same kind and arguments) was added to this transaction already: a unique
// job must not appear twice in one insert, and group-committed writes share
// one transaction.
func (tx *Tx) AddJobOnce(args river.JobArgs, opts *river.InsertOpts) {
	kind := args.Kind()
	for _, j := range tx.jobs {
		if j.Args.Kind() == kind && reflect.DeepEqual(j.Args, args) {
			return
		}
	}
	tx.AddJob(args, opts)
}
