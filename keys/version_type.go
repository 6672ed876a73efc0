package keys

// KeyVersion is one version of a key in a provider that holds versions (LocalFile, PKCS11).
type KeyVersion struct {
	// ID is the key id recorded in envelopes for this version.
	ID string
	// Name is the key's name (the family of versions).
	Name string
	// Version counts from 1.
	Version int
	// Active marks the version new objects get.
	Active bool
}
