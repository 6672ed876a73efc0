package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/s3seal/s3seal/internal/testenv"
)

// coreKMSObjects is the number of objects written and read back by the KMS-call tests.
const coreKMSObjects = 1000

// coreKMSCounts is what the KMS emulator saw during one phase.
type coreKMSCounts struct{ generate, decrypt int }

// coreKMSPhases writes coreKMSObjects small objects through one gateway and reads them back
// through a second gateway process (so that nothing the writer cached can help the reader),
// both talking to the KMS emulator through a counting proxy, and returns the GenerateDataKey
// and Decrypt calls the emulator received during each phase.
func coreKMSPhases(t *testing.T, extra map[string]string) (put, get coreKMSCounts) {
	m := testenv.NewMinIO(t)
	k := testenv.NewKMS(t)
	keyID := k.CreateKey(t)
	kp := newCoreProxy(t, k.Endpoint)
	bucket := m.NewBucket(t)
	hc := coreHTTPClient()
	counts := func() coreKMSCounts {
		return coreKMSCounts{kp.countTarget("GenerateDataKey"), kp.countTarget("Decrypt")}
	}
	objects := make([][]byte, coreKMSObjects)
	for i := range objects {
		objects[i] = testenv.RandomBytes(t, 200+i%50, "")
	}
	// parallel runs f(i) for every object on 16 workers.
	parallel := func(f func(i int)) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					f(i)
				}
			}()
		}
		for i := range objects {
			next <- i
		}
		close(next)
		wg.Wait()
	}

	writer := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, kp.URL, keyID, extra))
	before := counts()
	parallel(func(i int) {
		req := signedRequest(t, http.MethodPut, fmt.Sprintf("%s/%s/kms/%04d", writer.Endpoint, bucket, i), objects[i], "", writer.AccessKeyID, writer.SecretAccessKey)
		if r := coreDo(hc, req); r.Status != http.StatusOK || r.ReadErr != nil {
			t.Errorf("PUT %d: %v", i, r)
		}
	})
	after := counts()
	put = coreKMSCounts{after.generate - before.generate, after.decrypt - before.decrypt}

	reader := testenv.StartGateway(t, coreGatewayEnv(m, m.Endpoint, kp.URL, keyID, extra))
	before = counts()
	parallel(func(i int) {
		req := coreRequest(t, http.MethodGet, fmt.Sprintf("%s/%s/kms/%04d", reader.Endpoint, bucket, i), nil, reader.AccessKeyID, reader.SecretAccessKey)
		if r := coreDo(hc, req); !r.complete() || !bytes.Equal(r.Body, objects[i]) {
			t.Errorf("GET %d: %v (equal: %v)", i, r, bytes.Equal(r.Body, objects[i]))
		}
	})
	after = counts()
	get = coreKMSCounts{after.generate - before.generate, after.decrypt - before.decrypt}
	t.Logf("%d PUTs: %d GenerateDataKey, %d Decrypt; %d GETs through a second gateway: %d GenerateDataKey, %d Decrypt (counted at the KMS emulator)",
		coreKMSObjects, put.generate, put.decrypt, coreKMSObjects, get.generate, get.decrypt)
	return put, get
}

// TestCoreKMSCallsCached (issue 4, acceptance 4): with the default cache, 1,000 PUTs make at
// most 2 GenerateDataKey calls and 1,000 GETs of those objects, in another gateway process,
// at most 2 Decrypt calls, counted on the KMS emulator's side. At least one call each way
// shows that the counting proxy is really in the path.
func TestCoreKMSCallsCached(t *testing.T) {
	put, get := coreKMSPhases(t, nil)
	if put.generate < 1 || put.generate > 2 || put.decrypt != 0 {
		t.Errorf("PUTs made %d GenerateDataKey and %d Decrypt calls, want 1..2 and 0", put.generate, put.decrypt)
	}
	if get.decrypt < 1 || get.decrypt > 2 || get.generate != 0 {
		t.Errorf("GETs made %d Decrypt and %d GenerateDataKey calls, want 1..2 and 0", get.decrypt, get.generate)
	}
}

// TestCoreKMSCallsUncached (issue 4, acceptance 4): with GATEWAY_CACHE_DISABLED=true every
// object costs exactly one GenerateDataKey on PUT and one Decrypt on GET.
func TestCoreKMSCallsUncached(t *testing.T) {
	put, get := coreKMSPhases(t, map[string]string{"GATEWAY_CACHE_DISABLED": "true"})
	if put.generate != coreKMSObjects || put.decrypt != 0 {
		t.Errorf("PUTs made %d GenerateDataKey and %d Decrypt calls, want %d and 0", put.generate, put.decrypt, coreKMSObjects)
	}
	if get.decrypt != coreKMSObjects || get.generate != 0 {
		t.Errorf("GETs made %d Decrypt and %d GenerateDataKey calls, want %d and 0", get.decrypt, get.generate, coreKMSObjects)
	}
}
