package main

import (
	"fmt"
	"log/slog"

	"github.com/moreline/moreid/platform/config"
	"github.com/moreline/moreid/platform/pgdb"
	"github.com/moreline/moreid/platform/run"
	apikeyapp "github.com/moreline/moreid/services/apikey/app"
	authapp "github.com/moreline/moreid/services/auth/app"
	userapp "github.com/moreline/moreid/services/user/app"
)

// migrate applies every service's schema (the audit trail's with them) as
// the owner, MOREID_POSTGRES_OWNER_DSN, and grants the serving role of
// MOREID_POSTGRES_DSN what it needs; without an owner DSN the serving role
// applies them itself. It is the Kubernetes migration Job and the first step
// of make run. A Postgres advisory lock keeps concurrent runs from applying
// a migration twice. (auth's own table is the OIDC signing keys; its audit
// trail is the one every schema list carries.)
func migrate(log *slog.Logger, env *config.Reader) error {
	dsn, owner := pgdb.DSN(env), pgdb.OwnerDSN(env)
	if err := env.Err(); err != nil {
		return err
	}
	ctx, stop := run.SignalContext()
	defer stop()
	for _, s := range []struct {
		name    string
		schemas []pgdb.Schema
	}{
		{"user", userapp.Schemas()},
		{"apikey", apikeyapp.Schemas()},
		{"auth", authapp.Schemas()},
	} {
		_, db, err := pgdb.OpenMigrated(ctx, dsn, owner, pgdb.Options{MaxOpenConns: 1}, s.schemas...)
		if err != nil {
			return fmt.Errorf("%s schema: %w", s.name, err)
		}
		if err := db.Close(); err != nil {
			return fmt.Errorf("%s schema: %w", s.name, err)
		}
	}
	log.Info("migrations applied")
	return nil
}
