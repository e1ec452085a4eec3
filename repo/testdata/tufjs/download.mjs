// download.mjs runs tuf-js (the npm TUF client, unchanged) against a served
// shiplog repository: it refreshes metadata starting from the root.json in
// METADATA_DIR, then downloads and verifies one target.
//
// usage: node download.mjs METADATA_DIR METADATA_URL TARGETS_URL TARGET_DIR TARGET_PATH
// env:   SHIPLOG_NPM_DIR  directory whose node_modules holds tuf-js (default /opt/shiplog-npm)
// Prints the downloaded file's path; exits 1 with the error on any failure.
import { createRequire } from 'node:module';
import path from 'node:path';

const npmDir = process.env.SHIPLOG_NPM_DIR || '/opt/shiplog-npm';
const require = createRequire(path.join(npmDir, 'package.json'));
const { Updater } = require('tuf-js');

const [metadataDir, metadataBaseUrl, targetBaseUrl, targetDir, targetPath] = process.argv.slice(2);
if (!targetPath) {
  console.error('usage: node download.mjs METADATA_DIR METADATA_URL TARGETS_URL TARGET_DIR TARGET_PATH');
  process.exit(2);
}

try {
  const updater = new Updater({ metadataDir, metadataBaseUrl, targetDir, targetBaseUrl });
  await updater.refresh();
  const info = await updater.getTargetInfo(targetPath);
  if (!info) {
    throw new Error(`target ${targetPath} not found`);
  }
  const out = await updater.downloadTarget(info, path.join(targetDir, path.basename(targetPath)));
  console.log(out);
} catch (err) {
  console.error(`tuf-js: ${err && err.message ? err.message : err}`);
  process.exit(1);
}
