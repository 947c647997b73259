// The version of devicepass: the chart's version and appVersion, and the default image tag.
// Kept equal to package.json's version (a unit test checks), so that dist/ needs no package.json.
export const appVersion = "0.1.0";
