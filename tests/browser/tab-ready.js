// The loading tail of every tab page in this directory: the tests wait for `document.body.dataset.ready`,
// which is "true" once `loading` resolves, or "error: ..." (the error logged to the console) when it
// rejects.
export function markReady(loading) {
  loading.then(
    () => {
      document.body.dataset.ready = "true";
    },
    (error) => {
      console.error(error?.stack ?? String(error));
      document.body.dataset.ready = `error: ${error}`;
    },
  );
}
