import { afterAll } from 'vitest';
import { fhirCaptureDir, installFhirCapture } from './fhir-capture.js';

// A setup file of the integration tier (vitest.config.ts): with HUB_FHIR_CAPTURE_DIR
// set (.ci/run sets it), every FHIR answer a test's fetch receives is saved for the
// HAPI validator; without it this does nothing.
const dir = fhirCaptureDir();
if (dir) {
  const flush = installFhirCapture(dir);
  afterAll(flush);
}
