let turn: Promise<void> | null = null;

/**
 * Settles at the event loop's next check phase, after its poll phase has read every socket with
 * data waiting (a cache's invalidations). All who ask before then share one `setImmediate`: each
 * of theirs would have fired in that same phase, so sharing changes no order, only the cost.
 */
export function nextTurn(): Promise<void> {
  turn ??= new Promise((resolve) => {
    setImmediate(() => {
      turn = null;
      resolve();
    });
  });
  return turn;
}
