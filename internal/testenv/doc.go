// Package testenv is the test harness of s3seal: it connects tests to the services that
// scripts/test starts (a MinIO server as the S3 backend, moto_server as the AWS KMS emulator),
// starts gateway processes on free loopback ports with their logs kept, puts HAProxy in front
// of several of them (haproxy.go, the Debian package scripts/test installs), puts a hostile
// HTTP backend (hostile.go) or a TCP fault proxy that resets, cuts, delays or refuses
// connections (faultproxy.go) between a gateway and its services, and runs the real clients
// (aws-cli v1 and v2, boto3) against them.
//
// It is used only by tests. Everything comes from S3SEAL_TEST_* environment variables exported
// by scripts/test; when one is missing, [Require] skips the test, or fails it when CI=true, so
// a plain `go test ./...` on a laptop still works and CI can never pass by skipping.
//
// Why hand-written: the usual libraries for this (testcontainers, dockertest, gnomock) need a
// container runtime, which neither the developers' machines nor CI have (loopback only, no
// Docker). What is left is process management of four known binaries and a few aws-sdk-go-v2
// client constructors, small enough to keep here and tied to our own environment contract.
package testenv
