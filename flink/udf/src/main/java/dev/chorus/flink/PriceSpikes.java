package dev.chorus.flink;

import java.util.Arrays;

import org.apache.flink.table.annotation.ArgumentHint;
import org.apache.flink.table.annotation.ArgumentTrait;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.StateHint;
import org.apache.flink.table.api.dataview.MapView;
import org.apache.flink.table.functions.ProcessTableFunction;
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
 * buckets with running sums, so each trade touches O(1) state entries (amortised: a bucket
 * leaves the queue once). The trades waiting for the watermark are one entry per event time,
 * rewritten per arrival: O(peers) per trade, small with millisecond event times.
 *
 * <p>Output: the PARTITION BY column, then {@code price}, {@code quantity}, {@code vwap} (the
 * prior VWAP), {@code deviation} ({@code (price - vwap) / vwap}), {@code source_partition},
 * {@code source_offset}, then {@code rowtime}, the trade's event time.
 *
 * <p>The input must have no late rows (event time at or before the watermark): Flink does not
 * register a timer for such a time, so they are ignored. The signal jobs route late records
 * to the dead-letter topic before any reader sees them. Trades at or before the last event
 * time already taken (possible only right after a restore, which does not restore the
 * watermark) are ignored, as the OVER drops them.
 */
@DataTypeHint(
        "ROW<price DOUBLE, quantity DOUBLE, vwap DOUBLE, deviation DOUBLE,"
                + " source_partition INT, source_offset BIGINT>")
public final class PriceSpikes extends ProcessTableFunction<Row> {

    /** A trade waiting for the watermark to pass its event time. */
    public static class Trade {
        public double price;
        public double quantity;
        public Integer sourcePartition;
        public Long sourceOffset;

        public Trade() {}

        Trade(double price, double quantity, Integer sourcePartition, Long sourceOffset) {
            this.price = price;
            this.quantity = quantity;
            this.sourcePartition = sourcePartition;
            this.sourceOffset = sourceOffset;
        }
    }

    /** The trades of one event time in the window, summed. */
    public static class Bucket {
        public long time;
        public double pq;
        public double q;
        public long n;

        public Bucket() {}
    }

    /**
     * The running sums over the buckets in the window and where their queue is ({@code
     * buckets} from {@code head} to before {@code tail}), with the parameters, which a timer
     * does not receive.
     */
    public static class Window {
        public double pq;
        public double q;
        public long n;
        public long head;
        public long tail;
        /** The event time of the bucket at {@code head}, so most trades read no bucket. */
        public long headTime;
        /**
         * The event time of the last bucket (0 before the first: the OVER's initial value, so
         * a trade at or before 1970 is dropped there as here).
         */
        public long lastTime;

        public long windowMillis;
        public double threshold;

        public Window() {}
    }

    /*
     * State entries have no TTL: a TTL would expire a bucket while the running sums still hold
     * it. A key's state is bounded anyway: the buckets of one window, and the pending trades
     * until the watermark passes them.
     */
    public void eval(
            Context ctx,
            @StateHint(ttl = "0") Window window,
            @StateHint(ttl = "0") MapView<Long, Bucket> buckets,
            @StateHint(ttl = "0") MapView<Long, Trade[]> pending,
            @ArgumentHint(
                            value = {ArgumentTrait.SET_SEMANTIC_TABLE, ArgumentTrait.REQUIRE_ON_TIME},
                            name = "trades")
                    Row trade,
            @ArgumentHint(name = "window_seconds") Integer windowSeconds,
            @ArgumentHint(name = "spike_threshold") Double spikeThreshold)
            throws Exception {
        TimeContext<Long> time = ctx.timeContext(Long.class);
        long at = time.time();
        Long watermark = time.currentWatermark();
        if (at <= window.lastTime || (watermark != null && at <= watermark)) {
            return; // late (see the class doc)
        }
        window.windowMillis = windowSeconds * 1000L;
        window.threshold = spikeThreshold;
        Trade arrived =
                new Trade(
                        trade.<Double>getFieldAs("price"),
                        trade.<Double>getFieldAs("quantity"),
                        trade.getFieldAs("source_partition"),
                        trade.getFieldAs("source_offset"));
        Trade[] waiting = pending.get(at);
        if (waiting == null) {
            pending.put(at, new Trade[] {arrived});
            time.registerOnTime(at);
        } else {
            Trade[] more = Arrays.copyOf(waiting, waiting.length + 1);
            more[waiting.length] = arrived;
            pending.put(at, more);
        }
    }

    /** The watermark passed the event time of pending trades: they join the window, in order. */
    public void onTimer(
            OnTimerContext ctx,
            Window window,
            MapView<Long, Bucket> buckets,
            MapView<Long, Trade[]> pending)
            throws Exception {
        long at = ctx.timeContext(Long.class).time();
        Trade[] trades = pending.get(at);
        if (trades == null) {
            return;
        }
        pending.remove(at);
        leave(window, buckets, at - window.windowMillis);
        join(window, buckets, at, trades);
        for (Trade t : trades) {
            if (window.n <= 1) {
                continue; // no earlier trade: the OVER's n > 1
            }
            // the OVER's arithmetic, so that the same doubles come out
            double vwap = (window.pq - t.price * t.quantity) / (window.q - t.quantity);
            if (Math.abs(t.price - vwap) > window.threshold * vwap) {
                collect(
                        Row.of(
                                t.price,
                                t.quantity,
                                vwap,
                                (t.price - vwap) / vwap,
                                t.sourcePartition,
                                t.sourceOffset));
            }
        }
    }

    /** Removes the buckets before {@code from} from the window. */
    private static void leave(Window window, MapView<Long, Bucket> buckets, long from)
            throws Exception {
        while (window.head < window.tail && window.headTime < from) {
            Bucket oldest = buckets.get(window.head);
            buckets.remove(window.head);
            window.pq -= oldest.pq;
            window.q -= oldest.q;
            window.n -= oldest.n;
            window.head++;
            if (window.head < window.tail) {
                window.headTime = buckets.get(window.head).time;
            }
        }
        if (window.head == window.tail) {
            // an empty window sums to exactly zero: drop what rounding left behind
            window.pq = 0;
            window.q = 0;
            window.n = 0;
        }
    }

    /** Adds the trades of event time {@code at} (later than every bucket) to the window. */
    private static void join(
            Window window, MapView<Long, Bucket> buckets, long at, Trade[] trades)
            throws Exception {
        Bucket bucket = new Bucket();
        bucket.time = at;
        window.lastTime = at;
        for (Trade t : trades) {
            bucket.pq += t.price * t.quantity;
            bucket.q += t.quantity;
            bucket.n++;
        }
        if (window.head == window.tail) {
            window.headTime = at;
        }
        buckets.put(window.tail, bucket);
        window.tail++;
        window.pq += bucket.pq;
        window.q += bucket.q;
        window.n += bucket.n;
    }
}
