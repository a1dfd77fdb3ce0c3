// Package browsertest drives a real, headless Chromium against the demo's browser app
// (cmd/jwtauth-demo, served at /app/), to prove cookie mode where it matters: in a
// browser. Its test logs in, calls the API, refreshes and logs out in the page; ends,
// from the page's sessions list, the session that an app (curl's User-Agent) opened for
// the same user, and sees the app's refresh refused; has two tabs refresh at the same
// moment; has pages of other origins try to act with the user's cookies (form posts and
// a credentialed fetch); and reads the cookies' attributes as the browser stored them.
//
// It is a module of its own, so that jwtauth itself keeps no dependencies. It needs
// Debian's chromium package (or the browser named by $JWTAUTH_CHROMIUM). Without one the
// test skips, unless CI is set: in CI a missing browser is a failure.
//
//	cd browsertest && go test -count=1 .
//
// The test writes screenshots of the page after login and of its sessions list, and a
// report of what it saw (statuses, session labels, cookie attributes), under
// artifacts/, which git ignores.
package browsertest
