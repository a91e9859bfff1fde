package dev.chorus.flink;

import java.util.Arrays;
import java.util.List;

import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.api.dataview.MapView;
import org.apache.flink.table.functions.ProcessTableFunction;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.types.Row;

/**
 * {@code CHORUS_PRICE_SPIKES(trades => TABLE t PARTITION BY symbol, window_seconds => w,
 * spike_threshold => s, on_time => DESCRIPTOR(event_time))}: the trades whose price differs
 * from the VWAP of the same symbol's earlier trades in the {@code w} seconds before them by
 * more than {@code s} (relative).
 *
 * <p>It gives what this SQL gives (the trading job's former query), row for row:
 *
 * <pre>
 * SUM(price * quantity) OVER w AS pq_sum, SUM(quantity) OVER w AS q_sum, COUNT(*) OVER w AS n
 * WINDOW w AS (PARTITION BY symbol ORDER BY event_time
 *              RANGE BETWEEN INTERVAL w PRECEDING AND CURRENT ROW)
 * prior_vwap = (pq_sum - price * quantity) / (q_sum - quantity)    -- where n > 1
 * emitted where ABS(price - prior_vwap) > s * prior_vwap
 * </pre>
 *
 * <p>That is: trades are taken in event-time order once the watermark passes them; trades
 * with the same event time are peers and count as earlier for each other; the window of a
 * trade at {@code t} is {@code [t - w, t]}, both ends included; the trade itself is left out
 * of the prior sums. Flink runs the OVER with {@code RowTimeRangeBoundedPrecedingFunction},
 * which for every event time of a key walks every buffered time of that key to find the
 * ones leaving the window: O(window) per trade. Here the window is a queue of per-time
 * buckets with running sums: a trade costs O(1) (amortised: a bucket leaves the queue once).
 * The trades waiting for the watermark are kept sorted by event time, peers in arrival
 * order: O(1) for a trade arriving after the ones waiting, O(waiting trades later than it)
 * for one out of order.
 *
 * <p>State: a key's window and waiting trades are one {@link SymbolState}, the one entry of a
 * {@link MapView}. Each state access hashes and compares the key, and a value state (unlike a
 * view's entry) is converted to and from an internal row on every call, {@code eval}'s
 * included; so a trade costs one read and one write in {@code eval}, and an event time one
 * read and one write in {@code onTimer}. On the heap state backend (the jobs' default) a read
 * returns the object itself; on RocksDB each access would serialize the key's whole state.
 *
 * <p>Timers: one per distinct event time of a key. Fewer cannot give the same rows in Flink
 * 2.2: a row collected in {@code onTimer} carries the timer's time as its rowtime, and a timer
 * at or before the current watermark is not registered, so a time whose trades spike needs a
 * timer of its own from before the watermark passed it, which is before it is known whether
 * they spike.
 *
 * <p>Output: the PARTITION BY column, then {@code price}, {@code quantity}, {@code vwap} (the
 * prior VWAP), {@code deviation} ({@code (price - vwap) / vwap}), {@code source_partition},
 * {@code source_offset}, then {@code rowtime}, the trade's event time. The table needs the
 * columns {@code price} and {@code quantity} (DOUBLE), {@code source_partition} (INT) and
 * {@code source_offset} (BIGINT), found by name once.
 *
 * <p>The input must have no late rows (event time at or before the watermark): Flink's
 * runner drops them before {@code eval}, and so does {@code eval}. The signal jobs route
 * late records to the dead-letter topic before any reader sees them. Trades at or before the
 * last event time already taken (possible only right after a restore, which does not
 * restore the watermark) are ignored, as the OVER drops them.
 */
@DataTypeHint(
        "ROW<price DOUBLE, quantity DOUBLE, vwap DOUBLE, deviation DOUBLE,"
                + " source_partition INT, source_offset BIGINT>")
public final class PriceSpikes extends ProcessTableFunction<Row> {

    private static final String TRADES = "trades";

    /** The columns read from a trade, in the order of {@link #columns}. */
    private static final String[] COLUMNS = {
        "price", "quantity", "source_partition", "source_offset"
    };

    private static final LogicalTypeRoot[] COLUMN_TYPES = {
        LogicalTypeRoot.DOUBLE,
        LogicalTypeRoot.DOUBLE,
        LogicalTypeRoot.INTEGER,
        LogicalTypeRoot.BIGINT
    };

    /** The key of the one entry of the {@code symbol} view. */
    private static final Integer ONLY = 0;

    /** Positions of {@link #COLUMNS} in the table: found at the first trade, not per trade. */
    private transient int[] columns;

    /**
     * Everything kept for one partition key: the window, a ring of per-time buckets ({@code
     * bucketCount} of them from {@code bucketHead}) with their running sums, and the trades
     * waiting for the watermark ({@code waitingCount} of them from {@code waitingStart}, by
     * event time), with the call's parameters, which a timer does not receive.
     */
    public static class SymbolState {
        public long[] bucketTimes = new long[8];
        public double[] bucketPq = new double[8];
        public double[] bucketQ = new double[8];
        public long[] bucketN = new long[8];
        public int bucketHead;
        public int bucketCount;
        public double pq;
        public double q;
        public long n;
        /**
         * The event time of the last bucket (0 before the first: the OVER's initial value, so
         * a trade at or before 1970 is dropped there as here).
         */
        public long lastTime;

        public long[] times = new long[8];
        public double[] prices = new double[8];
        public double[] quantities = new double[8];
        public Integer[] partitions = new Integer[8];
        public Long[] offsets = new Long[8];
        public int waitingStart;
        public int waitingCount;

        public int windowSeconds;
        public double threshold;

        public SymbolState() {}

        /**
         * Adds a trade after the waiting ones at or before {@code at}; true if none was at
         * {@code at} (the time needs a timer).
         */
        boolean addWaiting(long at, double price, double quantity, Integer partition, Long offset) {
            makeRoomToWait();
            int end = waitingStart + waitingCount;
            int pos = end;
            if (waitingCount > 0 && times[end - 1] > at) {
                pos = waitingFrom(at + 1); // out of order: after its peers, before later times
                System.arraycopy(times, pos, times, pos + 1, end - pos);
                System.arraycopy(prices, pos, prices, pos + 1, end - pos);
                System.arraycopy(quantities, pos, quantities, pos + 1, end - pos);
                System.arraycopy(partitions, pos, partitions, pos + 1, end - pos);
                System.arraycopy(offsets, pos, offsets, pos + 1, end - pos);
            }
            boolean firstAtTime = pos == waitingStart || times[pos - 1] != at;
            times[pos] = at;
            prices[pos] = price;
            quantities[pos] = quantity;
            partitions[pos] = partition;
            offsets[pos] = offset;
            waitingCount++;
            return firstAtTime;
        }

        /** The index of the first waiting trade at or after {@code at}. */
        int waitingFrom(long at) {
            int lo = waitingStart;
            int hi = waitingStart + waitingCount;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (times[mid] < at) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            return lo;
        }

        /** Removes the waiting trades from {@code from} to before {@code to}. */
        void removeWaiting(int from, int to) {
            int end = waitingStart + waitingCount;
            int removed = to - from;
            if (from == waitingStart) {
                Arrays.fill(partitions, from, to, null);
                Arrays.fill(offsets, from, to, null);
                waitingStart = to; // the usual case: timers take the earliest time
            } else {
                System.arraycopy(times, to, times, from, end - to);
                System.arraycopy(prices, to, prices, from, end - to);
                System.arraycopy(quantities, to, quantities, from, end - to);
                System.arraycopy(partitions, to, partitions, from, end - to);
                System.arraycopy(offsets, to, offsets, from, end - to);
                Arrays.fill(partitions, end - removed, end, null);
                Arrays.fill(offsets, end - removed, end, null);
            }
            waitingCount -= removed;
            if (waitingCount == 0) {
                waitingStart = 0;
            }
        }

        /** Ensures a free slot after the waiting trades: compacts them, or doubles the arrays. */
        private void makeRoomToWait() {
            int end = waitingStart + waitingCount;
            if (end < times.length) {
                return;
            }
            // doubling only when at least half full keeps this O(1) per trade, amortised
            int capacity = waitingCount < times.length / 2 ? times.length : times.length * 2;
            times = Arrays.copyOfRange(times, waitingStart, waitingStart + capacity);
            prices = Arrays.copyOfRange(prices, waitingStart, waitingStart + capacity);
            quantities = Arrays.copyOfRange(quantities, waitingStart, waitingStart + capacity);
            partitions = Arrays.copyOfRange(partitions, waitingStart, waitingStart + capacity);
            offsets = Arrays.copyOfRange(offsets, waitingStart, waitingStart + capacity);
            waitingStart = 0;
        }

        /** Removes the buckets before {@code from} from the window. */
        void leave(long from) {
            while (bucketCount > 0 && bucketTimes[bucketHead] < from) {
                pq -= bucketPq[bucketHead];
                q -= bucketQ[bucketHead];
                n -= bucketN[bucketHead];
                bucketHead = (bucketHead + 1) % bucketTimes.length;
                bucketCount--;
            }
            if (bucketCount == 0) {
                // an empty window sums to exactly zero: drop what rounding left behind
                pq = 0;
                q = 0;
                n = 0;
                bucketHead = 0;
            }
        }

        /** Adds the waiting trades {@code from} to before {@code to}, all at {@code at}. */
        void join(long at, int from, int to) {
            if (bucketCount == bucketTimes.length) {
                int capacity = bucketTimes.length * 2;
                bucketTimes = unrolled(bucketTimes, bucketHead, capacity);
                bucketPq = unrolled(bucketPq, bucketHead, capacity);
                bucketQ = unrolled(bucketQ, bucketHead, capacity);
                bucketN = unrolled(bucketN, bucketHead, capacity);
                bucketHead = 0;
            }
            double bucketPqSum = 0;
            double bucketQSum = 0;
            for (int i = from; i < to; i++) {
                bucketPqSum += prices[i] * quantities[i];
                bucketQSum += quantities[i];
            }
            int tail = (bucketHead + bucketCount) % bucketTimes.length;
            bucketTimes[tail] = at;
            bucketPq[tail] = bucketPqSum;
            bucketQ[tail] = bucketQSum;
            bucketN[tail] = to - from;
            bucketCount++;
            lastTime = at;
            pq += bucketPqSum;
            q += bucketQSum;
            n += to - from;
        }
    }

    /*
     * The state has no TTL: a symbol quieter than the TTL would lose its window, which must
     * still hold its last trades. A key's state is bounded anyway: the buckets of one window,
     * and the trades waiting for the watermark.
     */
    public void eval(
            Context ctx,
            @StateHint(ttl = "0") MapView<Integer, SymbolState> symbol,
            @ArgumentHint(
                            value = {ArgumentTrait.SET_SEMANTIC_TABLE, ArgumentTrait.REQUIRE_ON_TIME},
                            name = TRADES)
                    Row trade,
            @ArgumentHint(name = "window_seconds") Integer windowSeconds,
            @ArgumentHint(name = "spike_threshold") Double spikeThreshold)
            throws Exception {
        TimeContext<Long> time = ctx.timeContext(Long.class);
        Long at = time.time();
        Long watermark = time.currentWatermark();
        if (watermark != null && at <= watermark) {
            return; // late (see the class doc)
        }
        SymbolState state = symbol.get(ONLY);
        if (state == null) {
            state = new SymbolState();
        }
        if (at <= state.lastTime) {
            return; // after a restore (see the class doc)
        }
        state.windowSeconds = windowSeconds;
        state.threshold = spikeThreshold;
        int[] column = columns(ctx);
        boolean firstAtTime =
                state.addWaiting(
                        at,
                        (Double) trade.getField(column[0]),
                        (Double) trade.getField(column[1]),
                        (Integer) trade.getField(column[2]),
                        (Long) trade.getField(column[3]));
        symbol.put(ONLY, state);
        if (firstAtTime) {
            time.registerOnTime(at);
        }
    }

    /** The watermark passed the event time of waiting trades: they join the window. */
    public void onTimer(OnTimerContext ctx, MapView<Integer, SymbolState> symbol)
            throws Exception {
        long at = ctx.timeContext(Long.class).time();
        SymbolState state = symbol.get(ONLY);
        if (state == null) {
            return;
        }
        int from = state.waitingFrom(at);
        int to = state.waitingFrom(at + 1);
        if (from == to) {
            return;
        }
        state.leave(at - state.windowSeconds * 1000L);
        state.join(at, from, to);
        for (int i = from; i < to; i++) {
            if (state.n <= 1) {
                continue; // no earlier trade: the OVER's n > 1
            }
            double price = state.prices[i];
            double quantity = state.quantities[i];
            // the OVER's arithmetic, so that the same doubles come out
            double vwap = (state.pq - price * quantity) / (state.q - quantity);
            if (Math.abs(price - vwap) > state.threshold * vwap) {
                collect(
                        Row.of(
                                price,
                                quantity,
                                vwap,
                                (price - vwap) / vwap,
                                state.partitions[i],
                                state.offsets[i]));
            }
        }
        state.removeWaiting(from, to);
        symbol.put(ONLY, state);
    }

    /** The positions of {@link #COLUMNS} in the trades table, checked once. */
    private int[] columns(Context ctx) {
        if (columns == null) {
            DataType table = ctx.tableSemanticsFor(TRADES).dataType();
            List<String> names = DataType.getFieldNames(table);
            List<DataType> types = DataType.getFieldDataTypes(table);
            int[] found = new int[COLUMNS.length];
            for (int i = 0; i < COLUMNS.length; i++) {
                found[i] = names.indexOf(COLUMNS[i]);
                if (found[i] < 0 || !types.get(found[i]).getLogicalType().is(COLUMN_TYPES[i])) {
                    throw new IllegalArgumentException(
                            "CHORUS_PRICE_SPIKES: the table argument 'trades' needs a column "
                                    + COLUMNS[i]
                                    + " of type "
                                    + COLUMN_TYPES[i]
                                    + ", it is "
                                    + table);
                }
            }
            columns = found;
        }
        return columns;
    }

    /** A full ring's elements from {@code head} on, at the start of a bigger array. */
    private static long[] unrolled(long[] ring, int head, int capacity) {
        long[] to = new long[capacity];
        System.arraycopy(ring, head, to, 0, ring.length - head);
        System.arraycopy(ring, 0, to, ring.length - head, head);
        return to;
    }

    private static double[] unrolled(double[] ring, int head, int capacity) {
        double[] to = new double[capacity];
        System.arraycopy(ring, head, to, 0, ring.length - head);
        System.arraycopy(ring, 0, to, ring.length - head, head);
        return to;
    }
}
