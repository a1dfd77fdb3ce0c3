//go:build race

package jwtauth

// raceEnabled: under the race detector sync.Pool drops items on purpose, so allocation
// counts of pooled paths are not meaningful.
const raceEnabled = true
