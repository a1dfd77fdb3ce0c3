package pgstore_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/pgstore"
)

// Wiring the store into jwtauth: every replica of the service points at the same
// database and the same Secret, and any of them can refresh a session another opened.
// (No Output line: it needs a PostgreSQL server, so it is compiled, not run.)
func Example() {
	ctx := context.Background()
	// Directly or through PgBouncer (session or transaction pooling): no pool setting.
	// To have PostgreSQL give up before the store's Timeout does, set the timeouts on
	// the service's role, once, in SQL (a pooler refuses them as connection parameters):
	//	ALTER ROLE app SET statement_timeout = '2s';
	//	ALTER ROLE app SET lock_timeout = '1s';
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	store, err := pgstore.New(pool, pgstore.Options{
		Table:   "auth.jwtauth_sessions", // default "jwtauth_sessions" in the search_path
		Timeout: 3 * time.Second,         // default 5 s
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil { // idempotent; or run the SQL in your migrations
		log.Fatal(err)
	}
	go func() { // reclaim the rows of users whose sessions have all ended
		for range time.Tick(time.Hour) {
			if _, err := store.DeleteExpired(ctx); err != nil {
				log.Print(err)
			}
		}
	}()
	auth, err := jwtauth.New(jwtauth.Config{
		Secret: []byte(os.Getenv("JWT_SECRET")), // the same on every replica
		Endpoints: &jwtauth.Endpoints{
			Authenticate: func(r *http.Request) (*jwtauth.User, error) {
				return &jwtauth.User{ID: "alice"}, nil // check credentials here
			},
		},
		RetrieveUser: func(ctx context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
			return &jwtauth.User{ID: c.UserID}, nil // look the user up here
		},
		Refresh: &jwtauth.Refresh{Store: store},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = auth
}
