//go:build !unix

package embedded

import "os"

// lockDir only opens the lock file where flock does not exist: nothing stops a second
// process from using the same data dir there.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
